//! The whole data path on real local shard stores: write_part then read_part, with shards lost
//! or corrupted. Any ≤ m bad shards per stripe → identical bytes; more → an error, never wrong bytes.

use bytes::Bytes;
use coffre_crypto::{DataKey, ObjectIdentity, PackageCipher};
use coffre_data::{
    read_part, write_part, BoxFuture, DataError, LocalShardStore, PartReader, ShardStore, StoreError, StoreStat,
    StripeLayout, WriteTarget,
};
use coffre_types::{Scheme, ShardId, VersionId};
use proptest::prelude::*;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// Wraps a store; shards of the listed (stripe, index) come back missing or bit-flipped.
struct Faulty {
    inner: LocalShardStore,
    missing: Mutex<HashSet<(u32, u8)>>,
    flipped: Mutex<HashSet<(u32, u8)>>,
}

impl ShardStore for Faulty {
    fn id(&self) -> &str {
        self.inner.id()
    }
    fn put(&self, id: ShardId, data: Bytes) -> BoxFuture<'_, Result<(), StoreError>> {
        self.inner.put(id, data)
    }
    fn get(&self, id: ShardId) -> BoxFuture<'_, Result<Bytes, StoreError>> {
        let missing = self.missing.lock().unwrap().contains(&(id.stripe, id.index));
        let flipped = self.flipped.lock().unwrap().contains(&(id.stripe, id.index));
        Box::pin(async move {
            if missing {
                return Err(StoreError::NotFound(id));
            }
            let b = self.inner.get(id).await?;
            if flipped && !b.is_empty() {
                let mut v = b.to_vec();
                let i = v.len() / 2;
                v[i] ^= 0x01;
                return Ok(Bytes::from(v));
            }
            Ok(b)
        })
    }
    fn delete(&self, id: ShardId) -> BoxFuture<'_, Result<(), StoreError>> {
        self.inner.delete(id)
    }
    fn list(&self) -> BoxFuture<'_, Result<Vec<ShardId>, StoreError>> {
        self.inner.list()
    }
    fn stat(&self) -> BoxFuture<'_, Result<StoreStat, StoreError>> {
        self.inner.stat()
    }
}

fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

struct Setup {
    _dir: tempfile::TempDir,
    stores: Vec<Arc<Faulty>>,
    reader: PartReader,
}

async fn write(scheme: Scheme, packages_per_stripe: usize, body: &[u8]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let stores: Vec<Arc<Faulty>> = (0..scheme.total())
        .map(|i| {
            Arc::new(Faulty {
                inner: LocalShardStore::open(format!("n{i}"), &dir.path().join(format!("n{i}"))).unwrap(),
                missing: Mutex::default(),
                flipped: Mutex::default(),
            })
        })
        .collect();
    let version = VersionId::random();
    let dk = DataKey::random();
    let cipher = Arc::new(PackageCipher::new(
        &dk,
        &ObjectIdentity {
            bucket: "b",
            key: "k",
            version: &version.0,
        },
    ));
    let layout = StripeLayout {
        scheme,
        packages_per_stripe,
    };
    let dyn_stores: Vec<Arc<dyn ShardStore>> = stores.iter().map(|s| s.clone() as Arc<dyn ShardStore>).collect();
    // Feed the body in odd-sized chunks, as a network would.
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        body.chunks(77_777).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let target = WriteTarget {
        budget: None,
        size_hint: None,
        layout,
        stores: dyn_stores.clone(),
        version,
        part: 0,
        cipher: cipher.clone(),
    };
    let written = write_part(target, futures_util::stream::iter(chunks)).await.unwrap();
    assert_eq!(written.size, body.len() as u64);
    let md5: [u8; 16] = {
        use md5::Digest;
        md5::Md5::digest(body).into()
    };
    assert_eq!(written.md5, md5);
    assert!(written.degraded.is_empty());
    let reader = PartReader {
        layout,
        stores: dyn_stores.into_iter().map(Some).collect(),
        version,
        part: 0,
        size: body.len() as u64,
        shard_hashes: Arc::new(written.shard_hashes),
        cipher,
        damaged: None,
        hold: None,
        budget: None,
    };
    Setup {
        _dir: dir,
        stores,
        reader,
    }
}

async fn read(r: &PartReader, start: u64, end: u64) -> Result<Vec<u8>, DataError> {
    let mut rx = read_part(r.clone(), start, end);
    let mut out = Vec::new();
    while let Some(b) = rx.recv().await {
        out.extend_from_slice(&b?);
    }
    Ok(out)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

const PPS: usize = 4; // 256 KiB stripes: many stripes from little data
const STRIPE: usize = PPS * 65_536;

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn damaged_shards_up_to_m_are_repaired(
        scheme in prop::sample::select(vec![(2u8, 1u8), (4, 2), (8, 4)]),
        len in prop::sample::select(vec![0usize, 1, STRIPE - 1, STRIPE, STRIPE + 1, 3 * STRIPE + 999, 11 * STRIPE + 5]),
        seed: u64,
        range in (any::<prop::sample::Index>(), any::<prop::sample::Index>()),
        damage in prop::collection::vec((any::<prop::sample::Index>(), any::<bool>()), 0..4),
    ) {
        let scheme = Scheme::new(scheme.0, scheme.1).unwrap();
        let body = data(len, seed);
        rt().block_on(async {
            let s = write(scheme, PPS, &body).await;
            // Damage up to m distinct shard indexes of every stripe.
            let n = scheme.total();
            let mut victims = HashSet::new();
            for (i, _) in damage.iter().take(scheme.parity as usize) { victims.insert(i.index(n) as u8); }
            let stripes = s.reader.layout.stripe_count(len as u64);
            for (k, &v) in victims.iter().enumerate() {
                let flip = damage[k % damage.len()].1;
                for st in 0..stripes {
                    let set = if flip { &s.stores[v as usize].flipped } else { &s.stores[v as usize].missing };
                    set.lock().unwrap().insert((st, v));
                }
            }
            let (a, b) = (range.0.index(len + 1) as u64, range.1.index(len + 1) as u64);
            let (a, b) = (a.min(b), a.max(b));
            let got = read(&s.reader, a, b).await.unwrap();
            prop_assert!(got[..] == body[a as usize..b as usize], "range {}..{} of {}", a, b, len);
            let all = read(&s.reader, 0, len as u64).await.unwrap();
            prop_assert!(all == body);
            Ok(())
        })?;
    }

    #[test]
    fn more_than_m_losses_fail_cleanly(
        scheme in prop::sample::select(vec![(2u8, 1u8), (4, 2), (8, 4)]),
        seed: u64,
        flip: bool,
    ) {
        let scheme = Scheme::new(scheme.0, scheme.1).unwrap();
        let body = data(2 * STRIPE + 3, seed);
        rt().block_on(async {
            let s = write(scheme, PPS, &body).await;
            for v in 0..=scheme.parity {
                let set = if flip { &s.stores[v as usize].flipped } else { &s.stores[v as usize].missing };
                set.lock().unwrap().insert((1, v));
            }
            // Stripe 0 is intact: its bytes may arrive; stripe 1 must fail, never be wrong.
            let mut rx = read_part(s.reader.clone(), 0, body.len() as u64);
            let mut got = Vec::new();
            let mut failed = false;
            while let Some(item) = rx.recv().await {
                match item {
                    Ok(b) => got.extend_from_slice(&b),
                    Err(e) => {
                        prop_assert!(matches!(e, DataError::Unrecoverable { stripe: 1, .. }), "{e}");
                        failed = true;
                    }
                }
            }
            prop_assert!(failed);
            prop_assert!(got[..] == body[..got.len()]);
            prop_assert!(got.len() <= STRIPE);
            Ok(())
        })?;
    }
}

#[test]
fn sixty_four_mib_default_stripes_with_two_stores_lost() {
    rt().block_on(async {
        let body = data(64 << 20, 42);
        let s = write(Scheme::DEFAULT, StripeLayout::DEFAULT_PACKAGES, &body).await;
        for v in [1u8, 4] {
            for st in 0..16 {
                s.stores[v as usize].missing.lock().unwrap().insert((st, v));
            }
        }
        assert!(read(&s.reader, 0, body.len() as u64).await.unwrap() == body);
        let (a, b) = (30_000_000u64, 30_000_100u64);
        assert_eq!(read(&s.reader, a, b).await.unwrap(), body[a as usize..b as usize]);
    });
}

#[test]
fn tampered_ciphertext_is_refused_even_with_matching_hash() {
    // A shard rewritten by someone who also fixed its BLAKE3 (it is not a MAC) still fails
    // to decrypt: the AEAD tag catches it.
    rt().block_on(async {
        let body = data(100_000, 7);
        let mut s = write(Scheme::new(2, 0).unwrap(), PPS, &body).await;
        let id = ShardId {
            version: s.reader.version,
            part: 0,
            stripe: 0,
            index: 0,
        };
        let mut shard = s.stores[0].inner.get(id).await.unwrap().to_vec();
        shard[10] ^= 0x80;
        s.stores[0].inner.put(id, Bytes::from(shard.clone())).await.unwrap();
        let mut hashes = (*s.reader.shard_hashes).clone();
        hashes[0][0] = *blake3::hash(&shard).as_bytes();
        s.reader.shard_hashes = Arc::new(hashes);
        assert!(matches!(
            read(&s.reader, 0, body.len() as u64).await,
            Err(DataError::Tampered)
        ));
    });
}

/// A store whose writes fail (a node lost mid-write).
struct Broken(LocalShardStore);

impl ShardStore for Broken {
    fn id(&self) -> &str {
        self.0.id()
    }
    fn put(&self, _: ShardId, _: Bytes) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async { Err(StoreError::Unavailable("disk gone".into())) })
    }
    fn get(&self, id: ShardId) -> BoxFuture<'_, Result<Bytes, StoreError>> {
        self.0.get(id)
    }
    fn delete(&self, id: ShardId) -> BoxFuture<'_, Result<(), StoreError>> {
        self.0.delete(id)
    }
    fn list(&self) -> BoxFuture<'_, Result<Vec<ShardId>, StoreError>> {
        self.0.list()
    }
    fn stat(&self) -> BoxFuture<'_, Result<StoreStat, StoreError>> {
        self.0.stat()
    }
}

#[test]
fn write_quorum_tolerates_one_failed_store_and_records_the_gap() {
    rt().block_on(async {
        for broken in [1usize, 2] {
            let dir = tempfile::tempdir().unwrap();
            let stores: Vec<Arc<dyn ShardStore>> = (0..6)
                .map(|i| {
                    let s = LocalShardStore::open(format!("n{i}"), &dir.path().join(format!("n{i}"))).unwrap();
                    if i < broken {
                        Arc::new(Broken(s)) as Arc<dyn ShardStore>
                    } else {
                        Arc::new(s) as Arc<dyn ShardStore>
                    }
                })
                .collect();
            let version = VersionId::random();
            let cipher = Arc::new(PackageCipher::new(
                &DataKey::random(),
                &ObjectIdentity {
                    bucket: "b",
                    key: "k",
                    version: &version.0,
                },
            ));
            let layout = StripeLayout {
                scheme: Scheme::DEFAULT,
                packages_per_stripe: PPS,
            };
            let body = data(3 * STRIPE, 3);
            let target = WriteTarget {
                budget: None,
                size_hint: None,
                layout,
                stores: stores.clone(),
                version,
                part: 0,
                cipher: cipher.clone(),
            };
            let result = write_part(target, futures_util::stream::iter(vec![Ok(Bytes::from(body.clone()))])).await;
            if broken == 2 {
                // 4 of 6 is below the write quorum (k+1 = 5): refused.
                assert!(
                    matches!(result, Err(DataError::QuorumLost { ok: 4, quorum: 5, .. })),
                    "{result:?}"
                );
                continue;
            }
            let w = result.unwrap();
            assert_eq!(w.degraded, vec![0]);
            let reader = PartReader {
                layout,
                stores: stores.into_iter().map(Some).collect(),
                version,
                part: 0,
                size: body.len() as u64,
                shard_hashes: Arc::new(w.shard_hashes),
                cipher,
                damaged: None,
                hold: None,
                budget: None,
            };
            assert!(read(&reader, 0, body.len() as u64).await.unwrap() == body);
        }
    });
}

#[test]
fn a_small_range_reads_only_the_shards_it_needs() {
    rt().block_on(async {
        let body = data(3 * STRIPE, 5);
        let s = write(Scheme::DEFAULT, PPS, &body).await;
        // Every shard of stripe 1 but data shard 0 is gone: a read of the stripe's first bytes
        // needs only that one, so it succeeds without parity.
        for i in 1..6u8 {
            s.stores[i as usize].missing.lock().unwrap().insert((1, i));
        }
        let (a, b) = (STRIPE as u64 + 10, STRIPE as u64 + 1000);
        assert_eq!(read(&s.reader, a, b).await.unwrap(), body[a as usize..b as usize]);
        // The whole stripe cannot be rebuilt: reading it fails cleanly.
        assert!(read(&s.reader, STRIPE as u64, 2 * STRIPE as u64).await.is_err());
    });
}
