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
  /** Even number of bytes, 256 B .. 4 MiB, and minSize < avgSize. */
  avgSize: number;
  /** Even number of bytes, 1 KiB .. 16 MiB, and avgSize < maxSize. */
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
  /**
   * How long an operation waits for a conflicting lock held by another live
   * process before it rejects with ERR_LOCKED. Default 0: fail at once.
   */
  lockTimeoutMs?: number;
}

export interface LockOptions {
  /** Overrides the instance's lockTimeoutMs for this call. */
  lockTimeoutMs?: number;
}

export type Tags = Record<string, string>;

export interface ItemSpec {
  name: string;
  type?: string;
  /** Expected byte length; only used for progress percentages. */
  size?: number;
}

export interface IngestOptions extends LockOptions {
  tags?: Tags;
  /**
   * TEST ONLY: sets the snapshot's createdAt, so retention rules can be tested
   * with controlled timestamps. Rejected unless the environment variable
   * CONTAINERARCHIVE_TEST_CREATED_AT=1 is set.
   */
  createdAt?: string | Date;
  /** At most one item; it names the stream (default name 'data', type 'data'). */
  items?: ItemSpec[];
}

export interface IngestMultiItem extends ItemSpec {
  stream: NodeJS.ReadableStream | Readable;
}

export interface IngestMultiOptions extends LockOptions {
  tags?: Tags;
  /** TEST ONLY, see IngestOptions.createdAt. */
  createdAt?: string | Date;
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

export interface RestoreOptions extends LockOptions {
  item?: string;
}

export interface ProgressEvent {
  operation: 'ingest' | 'verify' | 'prune';
  /** 0..100 when the total is known, otherwise null. */
  percentage: number | null;
  bytesProcessed: number;
  message: string;
}

export interface IngestCompleteEvent {
  snapshotId: string;
}

export type VerifyLevel = 'quick' | 'standard' | 'full';

export interface VerifyOptions extends LockOptions {
  /** Default 'standard'. */
  level?: VerifyLevel;
}

/**
 * What a problem concerns:
 * - config: config.json (or its copy in packs/parity) is damaged
 * - key: a key file is damaged
 * - snapshot: a manifest cannot be read
 * - index: an index file cannot be read
 * - missing-chunk: a snapshot references a chunk the index does not have
 * - missing-pack / pack-size: an indexed pack is absent or has the wrong size
 * - missing-idx / idx: a pack's .idx sidecar is absent, unreadable or disagrees with the index
 * - unindexed-pack: a pack on disk that no index file lists
 * - pack: a pack's content does not match its hash, or its header is damaged
 * - parity: a parity manifest or shard is missing or damaged, or a pack has no parity
 * - chunk: a chunk does not decrypt, decompress or match its id
 * - lock: a lock record cannot be read
 */
export type IssueKind =
  | 'config' | 'key' | 'snapshot' | 'index' | 'missing-chunk' | 'missing-pack' | 'pack-size'
  | 'missing-idx' | 'idx' | 'unindexed-pack' | 'pack' | 'parity' | 'chunk' | 'lock';

export interface RepositoryIssue {
  kind: IssueKind;
  /** Pack id (64 hex) or, for parity, the parity file name. */
  pack?: string;
  chunk?: string;
  snapshot?: string;
  /** What is wrong, naming the file (path relative to the repository). */
  error: string;
}

export interface VerifyResult {
  ok: boolean;
  level: VerifyLevel;
  errors: RepositoryIssue[];
  checked: { snapshots: number; packs: number; chunks: number; bytes: number };
  /**
   * Checks verify left out, and why: while another process holds a live lock
   * (e.g. a running ingest), 'unindexed-pack' and 'parity-coverage' are skipped,
   * because that process's packs may not be indexed or covered yet. Empty otherwise.
   */
  skipped: { check: 'unindexed-pack' | 'parity-coverage'; reason: string }[];
}

export interface RepairResult {
  /** True when index files were written or removed. */
  indexRebuilt: boolean;
  /** Packs rebuilt from parity (or whose .idx was rewritten). */
  packsRepaired: number;
  /** Parity groups whose parity was (re)written. */
  parityRewritten: number;
  locksRemoved: number;
  /** Problems repair found but could not fix. */
  errors: RepositoryIssue[];
  /** Packs that could not be rebuilt, and the snapshots that are no longer fully restorable. */
  unrecoverable: { pack: string | null; snapshots: string[] }[];
  /**
   * Files named like packs that are none (e.g. an empty file) and that nothing
   * references, moved aside to `<name>.quarantined` (kept, never read).
   */
  quarantined: { file: string; movedTo: string; reason: string }[];
}

export interface ReindexResult {
  packs: number;
  chunks: number;
}

export interface UnlockOptions {
  /** Remove every lock, live ones too. */
  force?: boolean;
}

/**
 * Retention policy, as restic's `forget`: a snapshot is kept when any rule
 * keeps it. Calendar rules keep the newest snapshot of each of the last N
 * periods (UTC) that have snapshots. At least one keep rule is required.
 */
export interface RetentionPolicy extends LockOptions {
  keepLast?: number;
  keepHourly?: number;
  keepDays?: number;
  keepWeeks?: number;
  keepMonths?: number;
  keepYears?: number;
  /** Keep every snapshot within this duration of the newest one: e.g. '30d', '12h', '2w', '1y6m' (y = 365 d, m = 30 d). */
  keepWithin?: string;
  /** Snapshots with any of these tags (key and value) are always kept. */
  keepTags?: Tags;
  /** Apply the policy only to snapshots that carry all of these tags; others are untouched. */
  filter?: { tags?: Tags };
  /** Repack packs whose unused share exceeds this fraction (0..1, default 0.1) or percentage string ('10%'). */
  maxUnused?: number | string;
}

export interface PruneResult {
  dryRun: boolean;
  /** Snapshots in scope that the policy keeps, oldest first. */
  keptSnapshots: string[];
  removedSnapshots: string[];
  /** Pack files deleted (including packs whose live chunks were repacked). */
  removedPacks: number;
  repackedPacks: number;
  /** Pack bytes deleted minus pack bytes written. */
  freedBytes: number;
  /** For each kept snapshot, the rules that kept it, e.g. ['last', 'daily']. */
  reasons: Record<string, string[]>;
}

export interface VerifyErrorEvent {
  pack: string | null;
  chunk: string | null;
  error: string;
}

export interface ArchiveEvents {
  'ingest:progress': ProgressEvent;
  'ingest:complete': IngestCompleteEvent;
  'verify:progress': ProgressEvent;
  'verify:error': VerifyErrorEvent;
  'prune:progress': ProgressEvent;
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
  verify(options?: VerifyOptions): Promise<VerifyResult>;
  repair(options?: LockOptions): Promise<RepairResult>;
  reindex(options?: LockOptions): Promise<ReindexResult>;
  unlock(options?: UnlockOptions): Promise<number>;
  prune(retention: RetentionPolicy, dryRun?: boolean): Promise<PruneResult>;
  on<E extends keyof ArchiveEvents>(event: E, handler: (event: ArchiveEvents[E]) => void): Subscription;
  close(): Promise<void>;
}
