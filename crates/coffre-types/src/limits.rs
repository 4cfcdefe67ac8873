//! Every limit Coffre enforces, in one place, with S3's value where S3 has one. Whatever a
//! client sends is checked against these before it is obeyed; docs/threat-model.md lists them.

use std::time::Duration;

// ---- objects and requests (S3's values) ----

/// Largest single PUT.
pub const MAX_PUT: u64 = 5 << 30;
/// Largest part of a multipart upload.
pub const MAX_PART: u64 = 5 << 30;
/// Smallest part, but for the last.
pub const MIN_PART: u64 = 5 << 20;
/// Part numbers are 1 to this.
pub const MAX_PARTS: u32 = 10_000;
/// Longest object key, in bytes.
pub const MAX_KEY_LEN: usize = 1024;
/// `x-amz-meta-*` names and values together.
pub const MAX_USER_META: usize = 2 << 10;
/// Tags on one object.
pub const MAX_OBJECT_TAGS: usize = 10;
/// The shortest root secret taken from the environment (a short or empty one would be
/// guessable).
pub const MIN_ROOT_SECRET: usize = 16;
/// How far ahead an object's retention may run (a bucket's default retention is bounded by
/// S3 to 100 years; a version's own date is bounded the same way, so a typo or a hostile
/// `9999-12-31` cannot make data undeletable for millennia).
pub const MAX_RETENTION_MS: u64 = 36_525 * 86_400_000; // 100 years of 365.25 days
/// Keys in one DeleteObjects.
pub const MAX_DELETE_KEYS: usize = 1000;
/// The most keys, parts or uploads one listing page holds.
pub const MAX_PAGE: usize = 1000;

// ---- request framing ----

/// Request heads (request line and headers), in bytes.
pub const MAX_HEAD_BYTES: usize = 64 << 10;
/// Headers in one request.
pub const MAX_HEADERS: usize = 128;
/// An XML request body (a Complete of 10,000 parts is about 1.2 MB).
pub const MAX_XML_BODY: usize = 4 << 20;
/// Elements one XML request body may hold: a Complete of 10,000 parts (three each) and some.
pub const MAX_XML_ELEMENTS: usize = 3 * 10_000 + 16;
/// XML nesting depth.
pub const MAX_XML_DEPTH: usize = 16;
/// One line of aws-chunked framing (a chunk header).
pub const MAX_CHUNK_LINE: usize = 8 << 10;
/// The trailer section of an aws-chunked body (checksums and a signature).
pub const MAX_TRAILER: usize = 16 << 10;

// ---- connections ----

/// A request head must arrive whole within this; hyper starts the clock when a connection
/// waits for its next request, so it is also how long an idle keep-alive connection stays.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(20);
/// A request body that sends nothing for this long is cut (S3's RequestTimeout).
pub const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(20);
/// After `BODY_RATE_GRACE`, a body arriving slower than this on average is cut.
pub const MIN_BODY_RATE: u64 = 4 << 10;
pub const BODY_RATE_GRACE: Duration = Duration::from_secs(30);
/// A client that takes nothing of a response for this long is disconnected.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(60);
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections open at once, all clients together (lowered to fit the descriptor limit).
pub const MAX_CONNECTIONS: usize = 4096;
/// Connections open at once from one IP address.
pub const MAX_CONNECTIONS_PER_IP: usize = 256;
/// Descriptors kept for everything but client connections (metadata, segments, nodes).
pub const RESERVED_DESCRIPTORS: usize = 512;
/// In-flight requests may finish for this long after a stop signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

// ---- memory ----

/// Request data buffered in the data path (stripes being cut, encoded, written or read),
/// all requests together; a request waits for room rather than grow the process.
pub const REQUEST_BUFFER_BUDGET: usize = 96 << 20;

// ---- cluster ----

/// One call to a storage node.
pub const NODE_CALL_TIMEOUT: Duration = Duration::from_secs(30);
pub const NODE_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A heartbeat's `/stat` (every 2 s): no answer within it marks the node down, which also
/// ends the calls waiting on it (a frozen node holds no request longer than about this plus
/// the heartbeat period).
pub const NODE_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(3);
/// Largest shard a node stores or returns (a 64 MiB stripe over one data shard).
pub const MAX_SHARD: usize = 64 << 20;
/// The block cache shared by the shard indexes of a process's stores: what their memory is
/// bounded by, however many shards they hold.
pub const SHARD_INDEX_CACHE: usize = 32 << 20;
/// A shard segment is sealed at this size or at this many records, whichever comes first: the
/// records not yet in the shard index (those of the active segment) are held in memory.
pub const SEGMENT_TARGET_BYTES: u64 = 256 << 20;
pub const SEGMENT_MAX_RECORDS: u32 = 1 << 18;
/// Largest answer the gateway reads from a node, shard data aside (a listing of shard ids).
pub const MAX_NODE_LISTING: usize = 512 << 20;

// ---- keys and background work ----

/// Shortest admin API token accepted, in bytes.
pub const MIN_ADMIN_TOKEN: usize = 32;
/// A node with less free space than this takes no new shards (placement), and one with less
/// than this beyond a healed shard's bytes is not chosen to hold it.
pub const NODE_FREE_MARGIN: u64 = 64 << 20;
/// Objects up to this size are inlined in their metadata record by the embedded server
/// (`--inline-max`): one synced metadata write instead of `k+m` shards and an intent.
pub const INLINE_DEFAULT: u64 = 16 << 10;
/// The largest `--inline-max` accepted: metadata records stay small (one AEAD package).
pub const INLINE_LIMIT: u64 = 64 << 10;
/// Deleted and replaced versions wait this long before their shards are removed.
pub const GC_GRACE: Duration = Duration::from_secs(15 * 60);
/// With several gateways, a write begun this long ago that never committed is an orphan
/// (its gateway died): the leader queues its shards for GC. Longer than any part upload.
pub const INTENT_EXPIRY: Duration = Duration::from_secs(24 * 3600);

/// Versions, markers and uploads lifecycle rules remove per second, at most (a pass over a
/// large bucket must not crowd out clients).
pub const LIFECYCLE_RATE: u32 = 2_000;

/// How long an unwrapped tenant key is kept in memory by default before the key provider is
/// asked for it again.
pub const KEY_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(300);
