//! Request bodies, verified while they stream: the payload SHA-256, aws-chunked framing with
//! per-chunk signatures and trailing checksums, and flexible checksums. A mismatch surfaces as
//! an error before the end of the stream, so the write is never committed.

use crate::auth::{Verified, STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER, UNSIGNED_PAYLOAD};
use crate::error::into_io;
use crate::S3Error;
use bytes::{Buf, Bytes, BytesMut};
use coffre_engine::checksum::{Algorithm, Checksummer};
use coffre_engine::VerifiedChecksum;
use coffre_types::limits;
use futures_util::Stream;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;

/// Where a body's bytes come from: the connection, or (in tests) any body.
type Source = UnsyncBoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// How the payload is framed and signed (from `x-amz-content-sha256`).
enum Payload {
    Unsigned,
    Sha256(String),
    Chunked { signed: bool },
}

enum State {
    Plain,
    ChunkHeader,
    ChunkData {
        remaining: u64,
        signature: Option<String>,
        sha: Option<Box<ring::digest::Context>>,
    },
    ChunkEnd,
    Trailers,
    Done,
}

/// How slow a body may be before it is cut (RequestTimeout).
#[derive(Clone, Copy, Debug)]
pub struct BodyLimits {
    /// No byte for this long.
    pub idle: std::time::Duration,
    /// After `rate_grace`, fewer bytes a second than this on average.
    pub min_rate: u64,
    pub rate_grace: std::time::Duration,
}

impl Default for BodyLimits {
    fn default() -> BodyLimits {
        BodyLimits {
            idle: limits::BODY_IDLE_TIMEOUT,
            min_rate: limits::MIN_BODY_RATE,
            rate_grace: limits::BODY_RATE_GRACE,
        }
    }
}

pub struct BodyReader {
    inner: Option<Source>,
    limits: BodyLimits,
    started: std::time::Instant,
    /// Bytes received from the connection (framing included), for the rate check.
    received: u64,
    buf: BytesMut,
    state: State,
    payload: Payload,
    verified: Option<Verified>,
    previous_signature: String,
    sha256: Option<ring::digest::Context>,
    checksum: Option<Checksummer>,
    expected_checksum: Option<String>,
    trailer_checksum: Option<Algorithm>,
    decoded_len: Option<u64>,
    /// The payload length the headers declare, if they do.
    declared: Option<u64>,
    seen: u64,
    max_len: u64,
    slot: VerifiedChecksum,
}

fn header<'a>(h: &'a http::HeaderMap, n: &str) -> Option<&'a str> {
    h.get(n).and_then(|v| v.to_str().ok())
}

fn mismatch(a: Algorithm) -> S3Error {
    S3Error::bad_digest(format!(
        "The {} you specified did not match the calculated checksum.",
        a.header()
    ))
}

/// The one `x-amz-checksum-<algorithm>` value among `get`'s (request headers, form fields):
/// S3 answers BadDigest for a malformed value as for a wrong one, InvalidRequest for two.
pub fn named_checksum<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
    what: &str,
) -> Result<Option<(Algorithm, &'a str)>, S3Error> {
    let mut found = None;
    for a in Algorithm::ALL {
        if let Some(v) = get(&a.header()) {
            if !a.valid_value(v) {
                return Err(mismatch(a));
            }
            if found.replace((a, v)).is_some() {
                return Err(S3Error::invalid_request(format!(
                    "Expecting a single x-amz-checksum- {what}"
                )));
            }
        }
    }
    Ok(found)
}

/// Finishes a checksum computed over a whole body: it must be `expected` when one was given,
/// and is left in `slot` for the engine to store.
pub fn settle_checksum(c: Checksummer, expected: Option<&str>, slot: &VerifiedChecksum) -> Result<(), S3Error> {
    let a = c.algorithm();
    let got = c.finish();
    if expected.is_some_and(|e| e != got) {
        return Err(mismatch(a));
    }
    *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some((a.name().to_string(), got));
    Ok(())
}

impl BodyReader {
    /// Reads the headers that say how to verify the body. Errors are the client's.
    pub fn new(
        body: impl http_body::Body<Data = Bytes, Error = impl Into<Box<dyn std::error::Error + Send + Sync>> + 'static>
            + Send
            + 'static,
        headers: &http::HeaderMap,
        verified: Option<Verified>,
        max_len: u64,
        limits: BodyLimits,
    ) -> Result<(BodyReader, VerifiedChecksum), S3Error> {
        let payload = match verified.as_ref().map(|v| v.payload.as_str()) {
            None | Some(UNSIGNED_PAYLOAD) => Payload::Unsigned,
            Some(STREAMING_SIGNED) | Some(STREAMING_SIGNED_TRAILER) => Payload::Chunked { signed: true },
            Some(STREAMING_UNSIGNED_TRAILER) => Payload::Chunked { signed: false },
            Some(h) if h.len() == 64 && h.bytes().all(|c| c.is_ascii_hexdigit()) => {
                Payload::Sha256(h.to_ascii_lowercase())
            }
            Some(_) => {
                return Err(S3Error::invalid_argument(
                    "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-* or a SHA-256",
                ))
            }
        };
        // A checksum given in a header, else announced for the trailer, else asked for by name.
        let named = named_checksum(|n| header(headers, n), "header")?;
        let mut checksum = named.map(|(a, _)| Checksummer::new(a));
        let expected_checksum = named.map(|(_, v)| v.to_string());
        let mut trailer_checksum = None;
        if let Some(t) = header(headers, "x-amz-trailer") {
            let a = t
                .trim()
                .strip_prefix("x-amz-checksum-")
                .and_then(Algorithm::parse)
                .ok_or_else(|| S3Error::invalid_request(format!("unsupported x-amz-trailer {t:?}")))?;
            if !matches!(payload, Payload::Chunked { .. }) {
                return Err(S3Error::invalid_request(
                    "x-amz-trailer needs an aws-chunked STREAMING-*-TRAILER body",
                ));
            }
            if checksum.is_some() {
                return Err(S3Error::invalid_request("Expecting a single x-amz-checksum- header"));
            }
            checksum = Some(Checksummer::new(a));
            trailer_checksum = Some(a);
        }
        if checksum.is_none() {
            if let Some(name) = header(headers, "x-amz-sdk-checksum-algorithm") {
                let a = Algorithm::parse(name)
                    .ok_or_else(|| S3Error::invalid_request(format!("unsupported checksum algorithm {name:?}")))?;
                checksum = Some(Checksummer::new(a));
            }
        }
        let decoded_len = match header(headers, "x-amz-decoded-content-length") {
            Some(v) => Some(
                v.parse()
                    .map_err(|_| S3Error::invalid_argument("x-amz-decoded-content-length is not a number"))?,
            ),
            None => None,
        };
        let declared = decoded_len.or_else(|| header(headers, "content-length").and_then(|v| v.parse().ok()));
        if declared.is_some_and(|l| l > max_len) {
            return Err(S3Error::entity_too_large(
                "Your proposed upload exceeds the maximum allowed size",
            ));
        }
        let state = if matches!(payload, Payload::Chunked { .. }) {
            State::ChunkHeader
        } else {
            State::Plain
        };
        let sha256 = matches!(payload, Payload::Sha256(_)).then(|| ring::digest::Context::new(&ring::digest::SHA256));
        let slot = VerifiedChecksum::default();
        let previous_signature = verified.as_ref().map(|v| v.seed_signature.clone()).unwrap_or_default();
        let reader = BodyReader {
            inner: Some(body.map_err(Into::into).boxed_unsync()),
            limits,
            started: std::time::Instant::now(),
            received: 0,
            buf: BytesMut::new(),
            state,
            payload,
            verified,
            previous_signature,
            sha256,
            checksum,
            expected_checksum,
            trailer_checksum,
            decoded_len,
            declared,
            seen: 0,
            max_len,
            slot: slot.clone(),
        };
        Ok((reader, slot))
    }

    /// The body's length as the request declared it (decoded length for aws-chunked).
    pub fn declared_len(&self) -> Option<u64> {
        self.declared
    }

    /// Computes `a` over the body if the request itself named no checksum (a multipart
    /// upload that declared its algorithm needs every part's).
    pub fn ensure_checksum(&mut self, a: Algorithm) {
        if self.checksum.is_none() {
            self.checksum = Some(Checksummer::new(a));
        }
    }

    /// Next frame from the connection; `Ok(None)` at its end.
    async fn fill(&mut self) -> Result<Option<Bytes>, S3Error> {
        loop {
            let Some(inner) = self.inner.as_mut() else {
                return Ok(None);
            };
            let frame = tokio::time::timeout(self.limits.idle, inner.frame())
                .await
                .map_err(|_| S3Error::request_timeout(format!(
                    "Your socket connection to the server was not read from or written to within the timeout period ({} s without data).",
                    self.limits.idle.as_secs()
                )))?;
            match frame {
                None => {
                    self.inner = None;
                    return Ok(None);
                }
                Some(Err(e)) => return Err(S3Error::incomplete_body(format!("the request body ended early: {e}"))),
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        if !d.is_empty() {
                            self.check_rate(d.len())?;
                            return Ok(Some(d));
                        }
                    }
                }
            }
        }
    }

    /// A body that trickles in slower than the minimum rate holds a connection and buffers
    /// for nothing: cut it.
    fn check_rate(&mut self, got: usize) -> Result<(), S3Error> {
        self.received = self.received.saturating_add(got as u64);
        let elapsed = self.started.elapsed();
        if elapsed > self.limits.rate_grace {
            let rate = self.received.saturating_mul(1000) / (elapsed.as_millis().max(1) as u64);
            if rate < self.limits.min_rate {
                return Err(S3Error::request_timeout(format!(
                    "The request body arrived at {rate} bytes/s, under the minimum of {} bytes/s.",
                    self.limits.min_rate
                )));
            }
        }
        Ok(())
    }

    fn account(&mut self, data: &[u8]) -> Result<(), S3Error> {
        self.seen += data.len() as u64;
        if self.seen > self.max_len {
            return Err(S3Error::entity_too_large(
                "Your proposed upload exceeds the maximum allowed size",
            ));
        }
        if let Some(c) = &mut self.checksum {
            c.update(data);
        }
        if let Some(s) = &mut self.sha256 {
            s.update(data);
        }
        Ok(())
    }

    /// Reads one CRLF-terminated line of chunk framing.
    async fn line(&mut self) -> Result<Option<String>, S3Error> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let l = self.buf.split_to(i + 2);
                return String::from_utf8(l[..i].to_vec())
                    .map(Some)
                    .map_err(|_| S3Error::invalid_request("aws-chunked framing is not UTF-8"));
            }
            if self.buf.len() > limits::MAX_CHUNK_LINE {
                return Err(S3Error::invalid_request("aws-chunked framing line too long"));
            }
            match self.fill().await? {
                Some(d) => self.buf.extend_from_slice(&d),
                None if self.buf.is_empty() => return Ok(None),
                None => return Err(S3Error::incomplete_body("the aws-chunked body ended inside a line")),
            }
        }
    }

    fn check_signature(
        &mut self,
        got: Option<String>,
        computed: impl FnOnce(&Verified, &str) -> String,
    ) -> Result<(), S3Error> {
        let Payload::Chunked { signed: true } = self.payload else {
            return Ok(());
        };
        let v = self
            .verified
            .as_ref()
            .ok_or_else(|| S3Error::access_denied("signed chunks need a signed request"))?;
        let got = got.ok_or_else(|| S3Error::signature_mismatch("a chunk has no chunk-signature"))?;
        let expected = computed(v, &self.previous_signature);
        if !crate::auth::constant_time_eq(&expected, &got) {
            return Err(S3Error::signature_mismatch(
                "The chunk signature does not match: the body was altered",
            ));
        }
        self.previous_signature = expected;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), S3Error> {
        self.state = State::Done;
        if let Some(d) = self.decoded_len {
            if d != self.seen {
                return Err(S3Error::incomplete_body(format!(
                    "x-amz-decoded-content-length is {d} but the body held {} bytes",
                    self.seen
                )));
            }
        }
        if let (Payload::Sha256(expected), Some(ctx)) = (&self.payload, self.sha256.take()) {
            if hex::encode(ctx.finish()) != *expected {
                return Err(S3Error::sha256_mismatch(
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                ));
            }
        }
        if let Some(c) = self.checksum.take() {
            if self.expected_checksum.is_none() && self.trailer_checksum.is_some() {
                return Err(S3Error::invalid_request(format!(
                    "the trailer {} was announced but not sent",
                    c.algorithm().header()
                )));
            }
            settle_checksum(c, self.expected_checksum.as_deref(), &self.slot)?;
        }
        Ok(())
    }

    async fn trailers(&mut self) -> Result<(), S3Error> {
        let mut canonical = String::new();
        let mut signature = None;
        let mut size = 0usize;
        while let Some(line) = self.line().await? {
            if line.is_empty() {
                break;
            }
            size = size.saturating_add(line.len() + 2);
            if size > limits::MAX_TRAILER {
                return Err(S3Error::invalid_request(format!(
                    "the aws-chunked trailer section is larger than {} bytes",
                    limits::MAX_TRAILER
                )));
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| S3Error::invalid_request("malformed trailer"))?;
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_string());
            if name == "x-amz-trailer-signature" {
                signature = Some(value);
                continue;
            }
            if let Some(a) = self.trailer_checksum.filter(|a| a.header() == name) {
                if !a.valid_value(&value) {
                    return Err(mismatch(a));
                }
                self.expected_checksum = Some(value.clone());
            }
            canonical.push_str(&format!("{name}:{value}\n"));
        }
        if matches!(self.payload, Payload::Chunked { signed: true }) && self.trailer_checksum.is_some() {
            self.check_signature(signature, |v, prev| v.trailer_signature(prev, &canonical))?;
        }
        self.finish()
    }

    /// The next piece of verified payload; `None` once the body is whole and verified.
    pub async fn next_chunk(&mut self) -> Option<Result<Bytes, S3Error>> {
        let r = self.step().await;
        if r.is_err() {
            self.state = State::Done;
        }
        r.transpose()
    }

    async fn step(&mut self) -> Result<Option<Bytes>, S3Error> {
        loop {
            match &mut self.state {
                State::Done => return Ok(None),
                State::Plain => match self.fill().await? {
                    Some(d) => {
                        self.account(&d)?;
                        return Ok(Some(d));
                    }
                    None => {
                        self.finish()?;
                        return Ok(None);
                    }
                },
                State::ChunkHeader => {
                    let line = self
                        .line()
                        .await?
                        .ok_or_else(|| S3Error::incomplete_body("the aws-chunked body ended before its last chunk"))?;
                    let (size, ext) = line.split_once(';').unwrap_or((line.as_str(), ""));
                    let size = u64::from_str_radix(size.trim(), 16)
                        .map_err(|_| S3Error::invalid_request("bad aws-chunked chunk size"))?;
                    let signature = ext.trim().strip_prefix("chunk-signature=").map(str::to_string);
                    let signed = matches!(self.payload, Payload::Chunked { signed: true });
                    if size == 0 {
                        let empty = hex::encode(ring::digest::digest(&ring::digest::SHA256, b""));
                        self.check_signature(signature, |v, prev| v.chunk_signature(prev, &empty))?;
                        self.state = State::Trailers;
                    } else {
                        let sha = signed.then(|| Box::new(ring::digest::Context::new(&ring::digest::SHA256)));
                        self.state = State::ChunkData {
                            remaining: size,
                            signature,
                            sha,
                        };
                    }
                }
                State::ChunkData { .. } => {
                    if self.buf.is_empty() {
                        match self.fill().await? {
                            Some(d) => self.buf.extend_from_slice(&d),
                            None => return Err(S3Error::incomplete_body("the aws-chunked body ended inside a chunk")),
                        }
                    }
                    let State::ChunkData { remaining, sha, .. } = &mut self.state else {
                        continue;
                    };
                    let n = (*remaining).min(self.buf.len() as u64) as usize;
                    let data = self.buf.split_to(n).freeze();
                    *remaining -= n as u64;
                    if let Some(s) = sha {
                        s.update(&data);
                    }
                    if *remaining == 0 {
                        let State::ChunkData { signature, sha, .. } =
                            std::mem::replace(&mut self.state, State::ChunkEnd)
                        else {
                            continue;
                        };
                        if let Some(s) = sha {
                            let h = hex::encode(s.finish());
                            self.check_signature(signature, |v, prev| v.chunk_signature(prev, &h))?;
                        }
                    }
                    self.account(&data)?;
                    return Ok(Some(data));
                }
                State::ChunkEnd => {
                    while self.buf.len() < 2 {
                        match self.fill().await? {
                            Some(d) => self.buf.extend_from_slice(&d),
                            None => return Err(S3Error::incomplete_body("the aws-chunked body ended after a chunk")),
                        }
                    }
                    if &self.buf[..2] != b"\r\n" {
                        return Err(S3Error::invalid_request("aws-chunked chunk is longer than its size"));
                    }
                    self.buf.advance(2);
                    self.state = State::ChunkHeader;
                }
                State::Trailers => {
                    self.trailers().await?;
                    return Ok(None);
                }
            }
        }
    }

    /// As a stream of `io::Result`s (S3 errors inside), for the data path.
    pub fn into_stream(self) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin {
        Box::pin(futures_util::stream::unfold(self, |mut r| async move {
            r.next_chunk().await.map(|item| (item.map_err(into_io), r))
        }))
    }

    /// Reads a small body whole (XML requests), refusing more than `limit` bytes.
    pub async fn read_all(mut self, limit: usize) -> Result<Vec<u8>, S3Error> {
        let mut out = Vec::new();
        while let Some(c) = self.next_chunk().await {
            let c = c?;
            if out.len() + c.len() > limit {
                return Err(S3Error::invalid_request(format!(
                    "request body larger than {limit} bytes"
                )));
            }
            out.extend_from_slice(&c);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::SigningKey;
    use http_body_util::StreamBody;
    use hyper::body::Frame;
    use proptest::prelude::*;

    fn verified(payload: &str) -> Verified {
        let key = SigningKey::derive("secret", "20260101", "fr-par", "s3").unwrap();
        Verified {
            access_key: "AK".into(),
            payload: payload.into(),
            signing_key: key,
            amz_date: "20260101T000000Z".into(),
            scope: "20260101/fr-par/s3/aws4_request".into(),
            seed_signature: "0".repeat(64),
            presigned: false,
        }
    }

    type TestBody = StreamBody<futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, std::io::Error>>>>;

    /// The wire bytes cut into frames at the given points.
    fn body_of(wire: Vec<u8>, cuts: &[usize]) -> TestBody {
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
        points.push(0);
        points.push(wire.len());
        points.sort_unstable();
        points.dedup();
        let frames: Vec<_> = points
            .windows(2)
            .map(|w| Ok(Frame::data(Bytes::copy_from_slice(&wire[w[0]..w[1]]))))
            .collect();
        StreamBody::new(futures_util::stream::iter(frames))
    }

    fn read(wire: Vec<u8>, cuts: &[usize], headers: &http::HeaderMap, v: Verified) -> Result<Vec<u8>, S3Error> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let (r, _) = BodyReader::new(body_of(wire, cuts), headers, Some(v), 1 << 20, BodyLimits::default())?;
            r.read_all(1 << 20).await
        })
    }

    /// aws-chunked framing of `data` in chunks of `sizes` (cycled), with a CRC32 trailer,
    /// signed with `v` when `signed`.
    fn chunked(data: &[u8], sizes: &[usize], v: &Verified, signed: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut prev = v.seed_signature.clone();
        let mut sign = |chunk: &[u8], out: &mut Vec<u8>| {
            if signed {
                let h = hex::encode(ring::digest::digest(&ring::digest::SHA256, chunk));
                prev = v.chunk_signature(&prev, &h);
                out.extend_from_slice(format!("{:x};chunk-signature={prev}\r\n", chunk.len()).as_bytes());
            } else {
                out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            }
        };
        let mut rest = data;
        let mut i = 0;
        while !rest.is_empty() {
            let n = sizes[i % sizes.len()].clamp(1, rest.len());
            sign(&rest[..n], &mut out);
            out.extend_from_slice(&rest[..n]);
            out.extend_from_slice(b"\r\n");
            rest = &rest[n..];
            i += 1;
        }
        sign(b"", &mut out);
        let mut c = Checksummer::new(Algorithm::Crc32);
        c.update(data);
        out.extend_from_slice(format!("x-amz-checksum-crc32:{}\r\n", c.finish()).as_bytes());
        if signed {
            let trailer = format!("x-amz-checksum-crc32:{}\n", {
                let mut c = Checksummer::new(Algorithm::Crc32);
                c.update(data);
                c.finish()
            });
            out.extend_from_slice(
                format!("x-amz-trailer-signature:{}\r\n", v.trailer_signature(&prev, &trailer)).as_bytes(),
            );
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    fn headers(decoded: usize) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert("x-amz-trailer", "x-amz-checksum-crc32".parse().unwrap());
        h.insert("x-amz-decoded-content-length", decoded.to_string().parse().unwrap());
        h
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        /// Whatever the chunk sizes and however the connection cuts the bytes, the decoder
        /// returns exactly the data, signed or not.
        #[test]
        fn chunked_roundtrip(data in proptest::collection::vec(any::<u8>(), 0..3000),
                             sizes in proptest::collection::vec(1usize..700, 1..5),
                             cuts in proptest::collection::vec(any::<usize>(), 0..12),
                             signed: bool) {
            let payload = if signed { STREAMING_SIGNED_TRAILER } else { STREAMING_UNSIGNED_TRAILER };
            let v = verified(payload);
            let wire = chunked(&data, &sizes, &v, signed);
            prop_assert_eq!(read(wire, &cuts, &headers(data.len()), v).unwrap(), data);
        }

        /// One flipped byte anywhere is refused (a signature, the checksum, the framing or the
        /// length catches it), never a wrong body accepted.
        #[test]
        fn chunked_tampering_is_refused(data in proptest::collection::vec(any::<u8>(), 1..2000),
                                        sizes in proptest::collection::vec(1usize..500, 1..4),
                                        at: usize, flip in 1u8..=255,
                                        cuts in proptest::collection::vec(any::<usize>(), 0..6)) {
            let v = verified(STREAMING_SIGNED_TRAILER);
            let mut wire = chunked(&data, &sizes, &v, true);
            let i = at % wire.len();
            wire[i] ^= flip;
            if let Ok(got) = read(wire, &cuts, &headers(data.len()), v) {
                prop_assert_eq!(got, data, "a tampered body was accepted with other bytes");
            }
        }

        /// Arbitrary bytes as an aws-chunked body: an answer, never a panic.
        #[test]
        fn chunked_garbage_never_panics(wire in proptest::collection::vec(any::<u8>(), 0..1500),
                                        cuts in proptest::collection::vec(any::<usize>(), 0..8),
                                        signed: bool) {
            let payload = if signed { STREAMING_SIGNED_TRAILER } else { STREAMING_UNSIGNED_TRAILER };
            let _ = read(wire, &cuts, &headers(10), verified(payload));
        }
    }

    #[test]
    fn an_endless_trailer_section_is_refused() {
        let v = verified(STREAMING_UNSIGNED_TRAILER);
        let mut wire = b"0\r\n".to_vec();
        for i in 0..2000 {
            wire.extend_from_slice(format!("x-pad-{i}:{}\r\n", "y".repeat(40)).as_bytes());
        }
        wire.extend_from_slice(b"\r\n");
        let e = read(wire, &[], &headers(0), v).unwrap_err();
        assert_eq!(e.code, "InvalidRequest");
        assert!(e.message.contains("trailer"), "{}", e.message);
    }
}
