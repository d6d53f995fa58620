/// <reference types="node" />
import type { Readable } from 'node:stream';

/** Every rejection from this package is an ArchiveError with a stable `code`. */
export type ArchiveErrorCode =
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_REPO_EXISTS'
  | 'ERR_REPO_NOT_FOUND'
  | 'ERR_PASSPHRASE_REQUIRED'
  | 'ERR_WRONG_PASSPHRASE'
  | 'ERR_SNAPSHOT_NOT_FOUND'
  | 'ERR_ITEM_NOT_FOUND'
  | 'ERR_UNSUPPORTED_FORMAT'
  | 'ERR_CORRUPT'
  | 'ERR_LOCKED'
  | 'ERR_IO'
  | 'ERR_CANCELLED'
  | 'ERR_CLOSED'
  | 'ERR_INTERNAL';

export declare class ArchiveError extends Error {
  readonly code: ArchiveErrorCode;
  constructor(code: ArchiveErrorCode, message: string);
}

export type Compression = 'gzip' | 'zstd' | 'none';

export interface ChunkingOptions {
  /** Even number of bytes, 64 B .. 1 MiB. */
  minSize: number;
  /** Even number of bytes, 256 B .. 4 MiB, and minSize <= avgSize. */
  avgSize: number;
  /** Even number of bytes, 1 KiB .. 16 MiB, and avgSize <= maxSize. */
  maxSize: number;
}

export interface ParityOptions {
  dataShards: number;
  parityShards: number;
}

export interface InitOptions {
  /** Encrypts the repository (AES-256-GCM, key wrapped with Argon2id). Omit for an unencrypted repository. */
  passphrase?: string;
  /** Default 'gzip'. */
  compression?: Compression;
  /** gzip: 0..9, zstd: 1..22. Defaults: gzip 1, zstd 3. */
  compressionLevel?: number;
  /** Default { minSize: 256 KiB, avgSize: 1 MiB, maxSize: 4 MiB }. */
  chunking?: ChunkingOptions;
  /** Bytes, default 8 MiB, 64 KiB .. 1 GiB. */
  packTargetSize?: number;
  /** Default { dataShards: 20, parityShards: 1 }. */
  parity?: ParityOptions;
}

export interface OpenOptions {
  passphrase?: string;
}

export type Tags = Record<string, string>;

export interface ItemSpec {
  name: string;
  type?: string;
  /** Expected byte length; only used for progress percentages. */
  size?: number;
}

export interface IngestOptions {
  tags?: Tags;
  /** At most one item; it names the stream (default name 'data', type 'data'). */
  items?: ItemSpec[];
}

export interface IngestMultiItem extends ItemSpec {
  stream: NodeJS.ReadableStream | Readable;
}

export interface IngestMultiOptions {
  tags?: Tags;
}

export interface SnapshotItem {
  name: string;
  type: string;
  size: number;
  /** Number of chunk references in the item. */
  chunks: number;
}

export interface Snapshot {
  id: string;
  /** ISO-8601, UTC. */
  createdAt: string;
  tags: Tags;
  items: SnapshotItem[];
  newChunks: number;
  reusedChunks: number;
  originalSize: number;
  storedSize: number;
}

export interface SnapshotFilter {
  tags?: Tags;
  after?: string | Date;
  before?: string | Date;
}

export interface RestoreOptions {
  item?: string;
}

export interface ProgressEvent {
  operation: 'ingest' | 'verify' | 'prune' | 'repair' | 'reindex';
  /** 0..100 when the total is known, otherwise null. */
  percentage: number | null;
  bytesProcessed: number;
  message: string;
}

export interface IngestCompleteEvent {
  snapshotId: string;
}

export interface ArchiveEvents {
  'ingest:progress': ProgressEvent;
  'ingest:complete': IngestCompleteEvent;
}

export interface Subscription {
  unsubscribe(): void;
}

export declare class ContainerArchive {
  private constructor();
  readonly path: string;
  static init(path: string, options?: InitOptions): Promise<ContainerArchive>;
  static open(path: string, options?: OpenOptions): Promise<ContainerArchive>;
  ingest(stream: NodeJS.ReadableStream | Readable, options?: IngestOptions): Promise<Snapshot>;
  ingestMulti(items: IngestMultiItem[], options?: IngestMultiOptions): Promise<Snapshot>;
  restore(snapshotId: string, options?: RestoreOptions): Promise<Readable>;
  listSnapshots(filter?: SnapshotFilter): Promise<Snapshot[]>;
  getSnapshot(id: string): Promise<Snapshot>;
  on<E extends keyof ArchiveEvents>(event: E, handler: (event: ArchiveEvents[E]) => void): Subscription;
  close(): Promise<void>;
}
