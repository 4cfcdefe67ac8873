//! Flexible checksums (`x-amz-checksum-*`): computed while the body streams.

use base64::Engine;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl Algorithm {
    pub const ALL: [Algorithm; 5] = [
        Algorithm::Crc32,
        Algorithm::Crc32c,
        Algorithm::Crc64Nvme,
        Algorithm::Sha1,
        Algorithm::Sha256,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "crc32",
            Algorithm::Crc32c => "crc32c",
            Algorithm::Crc64Nvme => "crc64nvme",
            Algorithm::Sha1 => "sha1",
            Algorithm::Sha256 => "sha256",
        }
    }

    pub fn header(self) -> String {
        format!("x-amz-checksum-{}", self.name())
    }

    pub fn parse(s: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.name().eq_ignore_ascii_case(s))
    }

    fn digest_len(self) -> usize {
        match self {
            Algorithm::Crc32 | Algorithm::Crc32c => 4,
            Algorithm::Crc64Nvme => 8,
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
        }
    }

    /// Whether `v` is a well-formed value (base64 of the right length).
    pub fn valid_value(self, v: &str) -> bool {
        base64::engine::general_purpose::STANDARD
            .decode(v)
            .is_ok_and(|b| b.len() == self.digest_len())
    }
}

impl Algorithm {
    fn crc(self) -> Option<crc_fast::CrcAlgorithm> {
        use crc_fast::CrcAlgorithm as C;
        match self {
            Algorithm::Crc32 => Some(C::Crc32IsoHdlc),
            Algorithm::Crc32c => Some(C::Crc32Iscsi),
            Algorithm::Crc64Nvme => Some(C::Crc64Nvme),
            _ => None,
        }
    }

    /// Whether a whole-object checksum can be derived from part checksums (CRCs combine).
    pub fn combinable(self) -> bool {
        self.crc().is_some()
    }
}

fn decode_b64(v: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(v).ok()
}

/// The checksum of a multipart object from its parts' (base64 value, size): COMPOSITE is
/// `hash(concatenated raw part checksums)-N`; FULL_OBJECT (CRCs only) combines the part CRCs
/// into the CRC of the whole object.
pub fn multipart_checksum(a: Algorithm, parts: &[(String, u64)], full_object: bool) -> Option<String> {
    if full_object {
        let c = a.crc()?;
        let mut acc: Option<u64> = None;
        for (v, len) in parts {
            let raw = decode_b64(v)?;
            let mut b = [0u8; 8];
            b[8 - raw.len()..].copy_from_slice(&raw);
            let crc = u64::from_be_bytes(b);
            acc = Some(match acc {
                None => crc,
                Some(prev) => crc_fast::checksum_combine(c, prev, crc, *len),
            });
        }
        let v = acc?;
        let raw = if a == Algorithm::Crc64Nvme {
            v.to_be_bytes().to_vec()
        } else {
            (v as u32).to_be_bytes().to_vec()
        };
        return Some(base64::engine::general_purpose::STANDARD.encode(raw));
    }
    let mut h = Checksummer::new(a);
    for (v, _) in parts {
        h.update(&decode_b64(v)?);
    }
    Some(format!("{}-{}", h.finish(), parts.len()))
}

pub enum Checksummer {
    Crc(Algorithm, crc_fast::Digest),
    Sha(Algorithm, ring::digest::Context),
}

impl Checksummer {
    pub fn new(a: Algorithm) -> Checksummer {
        use crc_fast::CrcAlgorithm as C;
        match a {
            Algorithm::Crc32 => Checksummer::Crc(a, crc_fast::Digest::new(C::Crc32IsoHdlc)),
            Algorithm::Crc32c => Checksummer::Crc(a, crc_fast::Digest::new(C::Crc32Iscsi)),
            Algorithm::Crc64Nvme => Checksummer::Crc(a, crc_fast::Digest::new(C::Crc64Nvme)),
            Algorithm::Sha1 => Checksummer::Sha(a, ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY)),
            Algorithm::Sha256 => Checksummer::Sha(a, ring::digest::Context::new(&ring::digest::SHA256)),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            Checksummer::Crc(a, _) | Checksummer::Sha(a, _) => *a,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Checksummer::Crc(_, d) => d.update(data),
            Checksummer::Sha(_, c) => c.update(data),
        }
    }

    /// The base64 value, as S3 headers carry it.
    pub fn finish(self) -> String {
        let raw = match self {
            Checksummer::Crc(Algorithm::Crc64Nvme, d) => d.finalize().to_be_bytes().to_vec(),
            Checksummer::Crc(_, d) => (d.finalize() as u32).to_be_bytes().to_vec(),
            Checksummer::Sha(_, c) => c.finish().as_ref().to_vec(),
        };
        base64::engine::general_purpose::STANDARD.encode(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(a: Algorithm, d: &[u8]) -> String {
        let mut c = Checksummer::new(a);
        c.update(d);
        c.finish()
    }

    #[test]
    fn full_object_crc_combines_parts() {
        let whole = b"hello, sovereign world";
        let (a, b) = whole.split_at(7);
        for alg in [Algorithm::Crc32, Algorithm::Crc32c, Algorithm::Crc64Nvme] {
            let parts = [(sum(alg, a), a.len() as u64), (sum(alg, b), b.len() as u64)];
            assert_eq!(multipart_checksum(alg, &parts, true).unwrap(), sum(alg, whole));
            assert!(multipart_checksum(alg, &parts, false).unwrap().ends_with("-2"));
        }
        assert!(multipart_checksum(Algorithm::Sha256, &[(sum(Algorithm::Sha256, a), 7)], true).is_none());
    }

    #[test]
    fn known_values() {
        // Values as AWS documents and computes them for "Hello world".
        assert_eq!(sum(Algorithm::Crc32, b"Hello world"), "i9aeUg==");
        assert_eq!(sum(Algorithm::Crc32c, b"Hello world"), "crUfeA==");
        assert_eq!(
            sum(Algorithm::Sha256, b""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert!(Algorithm::Crc64Nvme.valid_value(&sum(Algorithm::Crc64Nvme, b"x")));
        assert!(!Algorithm::Crc32.valid_value("AAAAAAAA"));
    }
}
