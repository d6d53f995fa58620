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
  | 'ERR_NO_CATALOG'
  | 'ERR_FILE_NOT_FOUND'
  | 'ERR_UNSUPPORTED_FORMAT'
  | 'ERR_CORRUPT'
  | 'ERR_LOCKED'
  | 'ERR_IO'
  | 'ERR_CANCELLED'
  | 'ERR_CLOSED'
  | 'ERR_INTERNAL'
  /** Thrown by require()/import when this platform's prebuilt engine is not installed. */
  | 'ERR_NATIVE_MISSING';

export declare class ArchiveError extends Error {
  readonly code: ArchiveErrorCode;
  constructor(code: ArchiveErrorCode, message: string);
}

/**
 * What an operation aborted through its `signal` rejects with (or, for a
 * restore stream, errors with), by Node's conventions: `name` 'AbortError',
 * `code` 'ABORT_ERR', `cause` the signal's reason. Nothing partial is kept:
 * an aborted ingest writes no snapshot, and the call's lock is removed.
 */
export declare class AbortError extends Error {
  readonly name: 'AbortError';
  readonly code: 'ABORT_ERR';
  constructor(reason?: unknown);
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

/**
 * How to reach an `s3://bucket/prefix` repository (issue 10). Every field not
 * given comes from the standard AWS environment variable named beside it.
 * Credentials never appear in an error message, an event or a lock record.
 */
export interface StorageOptions {
  /** e.g. 'http://127.0.0.1:3900' (MinIO, Garage, Ceph, R2, B2); AWS_ENDPOINT_URL. Default: Amazon S3. */
  endpoint?: string;
  /** AWS_REGION (then AWS_DEFAULT_REGION); default 'us-east-1'. */
  region?: string;
  /** AWS_ACCESS_KEY_ID. */
  accessKeyId?: string;
  /** AWS_SECRET_ACCESS_KEY. */
  secretAccessKey?: string;
  /** AWS_SESSION_TOKEN (temporary credentials). */
  sessionToken?: string;
  /** Path-style addressing (endpoint/bucket/key). Default: true when an endpoint is given, false on AWS. */
  forcePathStyle?: boolean;
  /** Requests in flight at once, 1..256. Default 8. */
  concurrency?: number;
  /**
   * Bound on one attempt of one request, in milliseconds (100 .. 1 hour).
   * A stalled connection fails after it and is retried. Default: 10 s for
   * metadata requests, 20 s for transfers.
   */
  timeoutMs?: number;
  /**
   * Retries of a request that failed transiently (5xx, 429, timeout,
   * connection reset), with exponential backoff (250 ms doubling to 8 s) and
   * jitter. Default 4: a dead endpoint fails within about 2 minutes.
   */
  retries?: number;
}

/** Where the repository is (`storage`, `cacheDir` and `cache` apply to `s3://` locations only: a local path refuses them), and how many threads work on it. */
export interface LocationOptions {
  storage?: StorageOptions;
  /**
   * Where index files, .idx sidecars and snapshot and parity manifests are
   * cached. Default: the OS cache directory (~/.cache/containerarchive on Linux).
   */
  cacheDir?: string;
  /** false: no local metadata cache. Default true. */
  cache?: boolean;
  /**
   * The most worker threads the engine runs for this repository's
   * operations (compression, encryption, hashing, decoding), 1..1024, so a
   * backup leaves cores to the service it runs in. Default: one per core
   * (at most 16). On object storage, `storage.concurrency` sets the threads
   * that wait on requests, independently.
   */
  threads?: number;
}

export interface InitOptions extends LocationOptions {
  /**
   * Encrypts the repository (AES-256-GCM, key wrapped with Argon2id). Leave the
   * key out for an unencrypted repository. Present with the value undefined,
   * null or '' (e.g. an unset environment variable) it rejects with
   * ERR_INVALID_ARGUMENT instead of silently creating an unencrypted repository.
   */
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

export interface OpenOptions extends LocationOptions {
  /** Required for encrypted repositories; undefined, null or '' as a value reject (see InitOptions.passphrase). */
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

export interface CancelOptions {
  /**
   * Cancels the call (also while it waits for a lock): it stops at its next
   * safe point, removes its lock and rejects with an {@link AbortError}.
   * A call that has already finished its work resolves as usual.
   */
  signal?: AbortSignal;
}

export type Tags = Record<string, string>;

/** A chunk an iterable source may yield. */
export type SourceChunk = Buffer | Uint8Array | string;

/**
 * What `ingest` and `ingestMulti` read: a Node `Readable`, a web `ReadableStream`
 * (e.g. a `fetch()` body; it must not be locked to a reader), or an (async)
 * iterable of Buffers, Uint8Arrays or strings (e.g. an async generator). When
 * an ingest fails, a web stream is cancelled and an iterator is returned.
 */
export type IngestSource =
  | NodeJS.ReadableStream
  | Readable
  | ReadableStream<Uint8Array>
  | AsyncIterable<SourceChunk>
  | Iterable<SourceChunk>;

export interface ItemSpec {
  name: string;
  /** 'volume-tar' and 'tar' items get a file catalog (see listFiles). */
  type?: string;
  /** Expected byte length; only used for progress percentages. */
  size?: number;
  /**
   * 'tar': parse the stream as a tar while it is stored and keep a catalog
   * of its members, whatever the type; false: no catalog, even for a tar type.
   * A stream that is not a tar is still stored byte-exact (see catalogError).
   */
  catalog?: 'tar' | false;
}

export interface IngestOptions extends LockOptions, CancelOptions {
  tags?: Tags;
  /** The host recorded in the snapshot (default: `os.hostname()`); at most 255 bytes. */
  host?: string;
  /**
   * Makes the snapshot depend on a producer's success (e.g. the exit of a
   * pg_dump child process). The end of the (last) stream is held back until
   * `until` settles: resolved, the snapshot is written; rejected at any time
   * before that, the ingest rejects with the same reason and no snapshot is
   * written (packs already written stay indexed; prune reclaims them).
   */
  until?: PromiseLike<unknown>;
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
  stream: IngestSource;
}

export interface IngestMultiOptions extends LockOptions, CancelOptions {
  tags?: Tags;
  /** See IngestOptions.host. */
  host?: string;
  /** See IngestOptions.until; the last item's end is held back. */
  until?: PromiseLike<unknown>;
  /** TEST ONLY, see IngestOptions.createdAt. */
  createdAt?: string | Date;
}

export interface SnapshotItem {
  name: string;
  type: string;
  size: number;
  /** Number of chunk references in the item. */
  chunks: number;
  /**
   * SHA-256 (64 lowercase hex) of the item's whole byte stream, as
   * `sha256sum` prints it for the source; restore checks it. Null for
   * snapshots written before manifest version 2.
   */
  sha256: string | null;
  /** The item's file catalog, if it has one (listFiles, restoreFile, restoreFiles). */
  catalog: { format: 'tar'; entries: number; size: number } | null;
  /** Why an item that was to be catalogued has none (e.g. it is not a tar); absent otherwise. */
  catalogError?: string;
}

/** One member of a tar item, from its catalog. */
export interface FileEntry {
  /** As stored in the tar; compared without a leading './' or '/' and a trailing '/'. */
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'hardlink' | 'chardev' | 'blockdev' | 'fifo' | 'other';
  /** The file's length in bytes (0 for links and directories). */
  size: number;
  /** Permission bits, e.g. 0o644. */
  mode: number;
  /** Modification time, seconds since the epoch. */
  mtime: number;
  uid: number;
  gid: number;
  uname?: string;
  gname?: string;
  /** The target of a symlink or hard link. */
  link?: string;
  /** Byte offset of the member's data within the item (restore with { start: offset, end: offset + size }). */
  offset: number;
  /** Byte offset of the member's first header block within the item. */
  header: number;
  /** Where the member (data padded to 512 bytes) ends within the item. */
  end: number;
  /** A GNU sparse file: listed, but restoreFile() refuses it. */
  sparse?: boolean;
}

export interface ListFilesOptions extends LockOptions, SnapshotSelector {
  /** The tar item (needed when the snapshot has several items). */
  item?: string;
  /** Only paths starting with it; 'dir/' means the directory and what is in it. */
  prefix?: string;
  /** Only paths matching it: '*' and '?' within a directory, '**' across; 'dir/**' includes 'dir'. */
  glob?: string;
}

export interface RestoreFileOptions extends LockOptions, SnapshotSelector, CancelOptions {
  item?: string;
  /** The member to restore; a hard link restores the file it links to. */
  path: string;
}

export interface RestoreFilesOptions extends LockOptions, SnapshotSelector, CancelOptions {
  item?: string;
  /** Exactly these members. */
  paths?: string[];
  /** See ListFilesOptions.prefix. */
  prefix?: string;
  /** See ListFilesOptions.glob. */
  glob?: string;
}

export interface Snapshot {
  id: string;
  /** ISO-8601, UTC. */
  createdAt: string;
  tags: Tags;
  /** The host that made the snapshot ('' for snapshots before manifest version 2). */
  host: string;
  /** The user the ingesting process ran as ('' before manifest version 2). */
  user: string;
  items: SnapshotItem[];
  newChunks: number;
  reusedChunks: number;
  originalSize: number;
  storedSize: number;
}

/** Narrows which snapshots 'latest', an id prefix or a listing consider. */
export interface SnapshotSelector {
  /** Every listed tag must be present with this value. */
  tags?: Tags;
  /** The host that made the snapshot; snapshots from before hosts were recorded have host ''. */
  host?: string;
}

export interface SnapshotFilter extends SnapshotSelector {
  /** Exclusive. */
  after?: string | Date;
  /** Exclusive. */
  before?: string | Date;
}

/**
 * Names a snapshot: 'latest' (the newest matching the selector), a full
 * 64-digit id, or a unique prefix of at least 8 hex digits. An ambiguous
 * prefix rejects with ERR_INVALID_ARGUMENT listing the matches; no match
 * rejects with ERR_SNAPSHOT_NOT_FOUND. The selector applies to ids too.
 */
export type SnapshotSpec = 'latest' | (string & {});

export interface RestoreOptions extends LockOptions, SnapshotSelector, CancelOptions {
  item?: string;
  /** First byte of the item to restore (default 0). Only the chunks overlapping [start, end) are read. */
  start?: number;
  /** End of the range, exclusive (default: the item's size; larger values are clamped). */
  end?: number;
}

export interface ProgressEvent {
  operation: 'ingest' | 'verify' | 'prune' | 'restore' | 'copy';
  /** 0..100 when the total is known, otherwise null. */
  percentage: number | null;
  bytesProcessed: number;
  message: string;
  /** On the last restore:progress event of a restore: how many chunks were read. */
  chunksRead?: number;
}

export interface IngestCompleteEvent {
  snapshotId: string;
}

export type VerifyLevel = 'quick' | 'standard' | 'full';

export interface VerifyOptions extends LockOptions, CancelOptions {
  /** Default 'standard' ('full' when `subset` is given). */
  level?: VerifyLevel;
  /**
   * Level 'full' only: read the data of a part of the packs, as restic's
   * `check --read-data-subset`. `{ n, of }` (or 'n/of', 1 <= n <= of <= 256)
   * is slice n of a fixed cycle of `of` slices, by pack id: the runs 1..of
   * read every pack once (e.g. `{ n: day % 7 + 1, of: 7 }` nightly). 'p%' reads a
   * fresh random p% of the packs each run. Every other check still covers
   * the whole repository.
   */
  subset?: { n: number; of: number } | `${number}/${number}` | `${number}%`;
}

export interface VerifySubsetReport {
  /** The slice as 'n/of', or the percentage as 'p%'. */
  subset: string;
  packsRead: number;
  packsTotal: number;
  parityGroupsRead: number;
  parityGroupsTotal: number;
}

/**
 * What a problem concerns:
 * - config: config.json (or its copy in packs/parity) is damaged
 * - key: a key file is damaged
 * - snapshot: a manifest (or its copy in packs/parity/snapshots) is missing, damaged or
 *   misnamed, or an item's length or SHA-256 disagrees with its chunks
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
  /** Present for a subset verify: the slice, and how much of the data it read. */
  subset?: VerifySubsetReport;
}

export interface RepairResult {
  /** True when index files were written or removed. */
  indexRebuilt: boolean;
  /** Packs rebuilt from parity (or whose .idx was rewritten). */
  packsRepaired: number;
  /** Parity groups whose parity was (re)written. */
  parityRewritten: number;
  locksRemoved: number;
  /** Snapshot manifests and manifest copies rewritten or renamed into place. */
  snapshotsRepaired: number;
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
export interface RetentionPolicy extends LockOptions, CancelOptions {
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
  /** Apply the policy only to snapshots that carry all of these tags; others are untouched. Applied before grouping. */
  filter?: { tags?: Tags };
  /**
   * How snapshots are grouped; each group gets the policy on its own.
   * Default: by host and the full tag set. An array groups by exactly those
   * keys: 'host' is the snapshot's host, any other name a tag key (snapshots
   * lacking the tag group together). false: one policy for the whole repository.
   */
  groupBy?: string[] | false;
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
  /** The same, per group (in group-key order). */
  groups: PruneGroup[];
}

export interface PruneGroup {
  /** The group's host; present when grouping by host (the default). */
  host?: string;
  /** The group's values of the grouping tags (all tags by default). */
  tags: Tags;
  keptSnapshots: string[];
  removedSnapshots: string[];
  reasons: Record<string, string[]>;
}

export interface ForgetOptions extends LockOptions {
  /** Report what would be removed (and, with prune, freed) and change nothing. */
  dryRun?: boolean;
  /**
   * Also reclaim at once the data only the forgotten snapshots referenced,
   * as prune() would (maxUnused 0.1), in the same exclusive-lock session.
   * Without it a later prune() reclaims it.
   */
  prune?: boolean;
}

export interface ForgetResult {
  dryRun: boolean;
  /** Full ids of the snapshots removed (or that would be), oldest first, each once. */
  removedSnapshots: string[];
  /** Whether garbage was collected (or, in a dry run, estimated). */
  pruned: boolean;
  /** Present when pruned: pack files deleted (including packs whose live chunks were repacked). */
  removedPacks?: number;
  /** Present when pruned. */
  repackedPacks?: number;
  /** Present when pruned: pack bytes deleted minus pack bytes written. */
  freedBytes?: number;
}

export interface ChunkTotals {
  count: number;
  /** Bytes before compression and encryption. */
  rawBytes: number;
  /** Bytes of the blobs in their packs. */
  storedBytes: number;
}

export interface FileTotals {
  files: number;
  bytes: number;
}

/**
 * Repository statistics, computed from the manifests, the index files and the
 * files on disk (not summed from per-snapshot counters), so they stay true
 * after prune, repair or a failed ingest. Ratios are null when their
 * denominator is 0.
 */
export interface RepositoryStats {
  snapshots: number;
  /** The sum of every snapshot's item sizes. */
  logicalBytes: number;
  /** Distinct chunks the snapshots reference, each counted once. */
  uniqueChunks: ChunkTotals;
  /** Indexed chunks no snapshot references (prune reclaims them). */
  unreferencedChunks: ChunkTotals;
  /** Referenced chunks the index does not list (verify and repair name them). */
  missingChunks: number;
  /** `.pack` files in packs/data. */
  packs: FileTotals;
  /** Parity shards and group manifests in packs/parity. */
  parity: FileTotals;
  /** Every file under the repository directory. */
  repositoryBytes: number;
  /** logicalBytes / uniqueChunks.rawBytes. */
  dedupRatio: number | null;
  /** uniqueChunks.rawBytes / uniqueChunks.storedBytes. */
  compressionRatio: number | null;
  /** parity.bytes / packs.bytes. */
  parityOverhead: number | null;
}

/** One key of an encrypted repository: a passphrase that opens it (see listKeys()). */
export interface KeyInfo {
  /** 32 hex; removeKey() takes it, or a unique prefix of at least 8 characters. */
  id: string;
  /** ISO-8601 UTC. */
  createdAt: string;
  /** The host that created the key; '' for keys made before key files recorded it. */
  host: string;
  /** Whether this handle was opened with this key. */
  current: boolean;
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
  /** While a restore stream is read: bytes handed to the stream, of the item's size from its manifest (never a null percentage); a last one at 100 just before the stream ends. */
  'restore:progress': ProgressEvent;
  /** On the source archive while copySnapshots() runs: item bytes read, of the copied snapshots' total. */
  'copy:progress': ProgressEvent;
}

export interface CopyFilter extends SnapshotFilter, LockOptions, CancelOptions {}

export interface CopyResult {
  /** Ids of the snapshots copied (the copies keep them), oldest first. */
  copied: string[];
  /** Ids of matching snapshots the target already had. */
  skipped: string[];
  /** Chunks the target stored anew, and chunks it already held. */
  newChunks: number;
  reusedChunks: number;
  /** Bytes of the new blobs in the target's packs (compressed, encrypted). */
  storedSize: number;
  /** Item bytes read from this repository (the copied snapshots' sizes). */
  bytesCopied: number;
}

export interface Subscription {
  unsubscribe(): void;
}

export declare class ContainerArchive {
  private constructor();
  readonly path: string;
  /** `path`: a local directory, or `s3://bucket/prefix` for a repository in an S3-compatible bucket. */
  static init(path: string, options?: InitOptions): Promise<ContainerArchive>;
  /** `path`: a local directory, or `s3://bucket/prefix` (see StorageOptions). */
  static open(path: string, options?: OpenOptions): Promise<ContainerArchive>;
  ingest(stream: IngestSource, options?: IngestOptions): Promise<Snapshot>;
  ingestMulti(items: IngestMultiItem[], options?: IngestMultiOptions): Promise<Snapshot>;
  restore(snapshotId: SnapshotSpec, options?: RestoreOptions): Promise<Readable>;
  /**
   * The members of a tar item, from its catalog, without reading the item:
   * `for await (const f of repo.listFiles(id, { prefix: 'data/' }))`. An item
   * without a catalog rejects with ERR_NO_CATALOG, saying why.
   */
  listFiles(snapshotId: SnapshotSpec, options?: ListFilesOptions): AsyncIterable<FileEntry>;
  /**
   * One member's bytes, read as a byte range of the item. ERR_FILE_NOT_FOUND
   * when the tar has no such member (the last of a repeated path wins, as
   * with tar -x); ERR_INVALID_ARGUMENT for a directory, symlink or device;
   * ERR_UNSUPPORTED_FORMAT for a GNU sparse file.
   */
  restoreFile(snapshotId: SnapshotSpec, options: RestoreFileOptions): Promise<Readable>;
  /** A tar of the chosen members with their original headers, in archive order. */
  restoreFiles(snapshotId: SnapshotSpec, options: RestoreFilesOptions): Promise<Readable>;
  listSnapshots(filter?: SnapshotFilter): Promise<Snapshot[]>;
  getSnapshot(id: SnapshotSpec, selector?: SnapshotSelector): Promise<Snapshot>;
  stats(options?: LockOptions): Promise<RepositoryStats>;
  verify(options?: VerifyOptions): Promise<VerifyResult>;
  repair(options?: LockOptions & CancelOptions): Promise<RepairResult>;
  reindex(options?: LockOptions): Promise<ReindexResult>;
  unlock(options?: UnlockOptions): Promise<number>;
  prune(retention: RetentionPolicy, dryRun?: boolean): Promise<PruneResult>;
  /**
   * The keys of an encrypted repository (one per passphrase that opens it),
   * oldest first. Only the repository's own keys are listed; planted key
   * files are not (verify() reports them). ERR_INVALID_ARGUMENT for an
   * unencrypted repository.
   */
  listKeys(): Promise<KeyInfo[]>;
  /**
   * Adds a key, so that `passphrase` opens the repository too. Only the
   * master key is re-wrapped; no data is rewritten. Takes the exclusive lock.
   * Version-1 key files (from older engines) are upgraded to version 2 first,
   * keeping their passphrase. Resolves the new key (current: false).
   * ERR_INVALID_ARGUMENT for an empty passphrase or an unencrypted repository.
   */
  addKey(passphrase: string, options?: LockOptions): Promise<KeyInfo>;
  /**
   * Removes a key (its key file and copy) by id or unique prefix of at least
   * 8 characters; resolves the full id. The repository's last key is never
   * removed; the key this handle was opened with can be removed while another
   * key remains (the handle keeps working). Unknown (planted) key files can
   * be removed by id too. ERR_INVALID_ARGUMENT for an unknown or ambiguous id
   * (the message lists the key ids) or the last key; nothing is changed then.
   */
  removeKey(id: string, options?: LockOptions): Promise<string>;
  /**
   * Replaces the key this handle was opened with by a new key for
   * `newPassphrase`: addKey, then removeKey of the old key, under one
   * exclusive lock. Other keys stay. Crash-safe: killed at any instant, the
   * old or the new passphrase opens the repository, and repair() completes
   * the state it finds. Resolves the new key (current: true).
   */
  changePassphrase(newPassphrase: string, options?: LockOptions): Promise<KeyInfo>;
  /**
   * Removes the named snapshots under the exclusive lock. `ids` are full ids
   * or unique prefixes of at least 8 hex digits; 'latest' is refused. Every
   * id is resolved first: an unknown one rejects with ERR_SNAPSHOT_NOT_FOUND,
   * an ambiguous one (or 'latest') with ERR_INVALID_ARGUMENT, and nothing is
   * removed. Naming a snapshot twice removes it once. Their data stays until
   * prune() runs, or is reclaimed at once with `{ prune: true }` (which
   * emits 'prune:progress').
   */
  forget(ids: string | string[], options?: ForgetOptions): Promise<ForgetResult>;
  /**
   * Copies the snapshots matching `filter` into `target`, another open
   * archive, e.g. a local repository to an off-site bucket. Each copy keeps
   * its id, createdAt, tags, host, user, item names, types, sizes and
   * SHA-256; snapshots whose id the target already has are skipped, so a
   * repeated copy reads and writes nothing. The repositories may differ in
   * keys, compression, chunk sizes and parity: chunks are re-encoded for the
   * target, keeping this repository's chunk boundaries, and data the target
   * already holds is not stored again. Holds a shared lock on both (like
   * restore and ingest). Each snapshot is committed after its data, index
   * and parity: a failure leaves no manifest for the snapshot being copied
   * (earlier ones stay; a rerun skips them). Emits 'copy:progress' here.
   */
  copySnapshots(target: ContainerArchive, filter?: CopyFilter): Promise<CopyResult>;
  on<E extends keyof ArchiveEvents>(event: E, handler: (event: ArchiveEvents[E]) => void): Subscription;
  close(): Promise<void>;
}
