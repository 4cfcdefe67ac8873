//! Small shared types: identifiers, erasure schemes, time formatting, limits, and the
//! background-worker runner every process uses.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

pub mod background;
pub mod limits;
pub mod metrics;
pub mod size;
pub mod time;

/// Reed-Solomon scheme: `data` shards plus `parity` shards per stripe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Scheme {
    pub data: u8,
    pub parity: u8,
}

impl Scheme {
    pub const DEFAULT: Scheme = Scheme { data: 4, parity: 2 };

    pub fn new(data: u8, parity: u8) -> Result<Scheme, String> {
        if !(1..=16).contains(&data) || parity > 4 {
            return Err(format!(
                "erasure scheme {data}+{parity} unsupported: data shards 1..=16, parity 0..=4"
            ));
        }
        Ok(Scheme { data, parity })
    }

    pub fn total(&self) -> usize {
        self.data as usize + self.parity as usize
    }

    /// Shards needed to acknowledge a write: every data shard plus one parity shard, so a
    /// degraded write still survives one more loss.
    pub fn write_quorum(&self) -> usize {
        self.data as usize + usize::from(self.parity > 0)
    }
}

impl std::str::FromStr for Scheme {
    type Err = String;
    fn from_str(s: &str) -> Result<Scheme, String> {
        let (d, p) = s
            .split_once('+')
            .ok_or_else(|| format!("scheme {s:?} is not of the form K+M"))?;
        let d = d.trim().parse().map_err(|_| format!("bad data count in {s:?}"))?;
        let p = p.trim().parse().map_err(|_| format!("bad parity count in {s:?}"))?;
        Scheme::new(d, p)
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}+{}", self.data, self.parity)
    }
}

/// Identity of one stored version of an object: 16 random bytes. Shards are named after it,
/// never after the object key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct VersionId(pub [u8; 16]);

impl VersionId {
    pub fn random() -> VersionId {
        VersionId(random_bytes())
    }
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    pub fn from_hex(s: &str) -> Option<VersionId> {
        let v = hex::decode(s).ok()?;
        Some(VersionId(v.try_into().ok()?))
    }
}

impl fmt::Debug for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.to_hex())
    }
}

/// One shard: the `index`-th shard (data first, then parity) of stripe `stripe` of part `part`
/// of a version. Its binary form (`to_bytes`) is what shard stores index by.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct ShardId {
    pub version: VersionId,
    pub part: u16,
    pub stripe: u32,
    pub index: u8,
}

impl ShardId {
    pub const LEN: usize = 16 + 2 + 4 + 1;

    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[..16].copy_from_slice(&self.version.0);
        b[16..18].copy_from_slice(&self.part.to_be_bytes());
        b[18..22].copy_from_slice(&self.stripe.to_be_bytes());
        b[22] = self.index;
        b
    }

    pub fn from_bytes(b: &[u8]) -> Option<ShardId> {
        if b.len() != Self::LEN {
            return None;
        }
        Some(ShardId {
            version: VersionId(b[..16].try_into().ok()?),
            part: u16::from_be_bytes(b[16..18].try_into().ok()?),
            stripe: u32::from_be_bytes(b[18..22].try_into().ok()?),
            index: b[22],
        })
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}.{}",
            self.version.to_hex(),
            self.part,
            self.stripe,
            self.index
        )
    }
}

/// A fresh IAM-style id: a prefix (`AIDA` users, `AROA` roles) and 16 upper-case hex digits.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", hex::encode_upper(random_bytes::<8>()))
}

/// Cryptographically random bytes from the OS.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom;
    let mut b = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .expect("the OS random generator failed");
    b
}

/// Creates `path` (which must not exist) with mode 0600, writes `contents` and syncs it: how
/// every secret (master key, credentials, tokens, private keys) reaches the disk.
pub fn create_private_file(path: &std::path::Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn scheme_parse() {
        assert_eq!("4+2".parse::<Scheme>().unwrap(), Scheme::DEFAULT);
        assert_eq!("1+0".parse::<Scheme>().unwrap().write_quorum(), 1);
        assert_eq!("16+4".parse::<Scheme>().unwrap().total(), 20);
        assert!("17+1".parse::<Scheme>().is_err());
        assert!("4+5".parse::<Scheme>().is_err());
        assert!("0+1".parse::<Scheme>().is_err());
        assert!("x".parse::<Scheme>().is_err());
        assert_eq!(Scheme::DEFAULT.write_quorum(), 5);
    }

    proptest! {
        #[test]
        fn shard_id_roundtrip_and_order(a: ([u8;16], u16, u32, u8), b: ([u8;16], u16, u32, u8)) {
            let sa = ShardId { version: VersionId(a.0), part: a.1, stripe: a.2, index: a.3 };
            let sb = ShardId { version: VersionId(b.0), part: b.1, stripe: b.2, index: b.3 };
            prop_assert_eq!(ShardId::from_bytes(&sa.to_bytes()), Some(sa));
            prop_assert_eq!(sa.cmp(&sb), sa.to_bytes().cmp(&sb.to_bytes()));
        }
    }
}
