//! Durability simulation: a year of disk failures on 1 000 nodes in 10 sites, with stripes
//! placed by the real placement code (`coffre_cluster::place`, rendezvous hashing with the
//! site as failure domain) and repaired in the real repair order (`coffre_meta::keys::repair`
//! over `coffre_meta::repair_margin`: the stripes closest to loss first). Reports, per scheme,
//! the stripes that reached zero margin (one more loss would lose them) and those lost.
//!
//! `cargo bench --bench durability_sim` (env: COFFRE_SIM_AFR, annual failure rate, default
//! 0.02; COFFRE_SIM_NODE_TB, data per node, default 16; COFFRE_SIM_REPAIR_MBS, repair throughput
//! per surviving node in MB/s, default 30; COFFRE_SIM_REPAIR_CAP_GBS, the cluster's repair
//! ceiling (network), default 10; COFFRE_SIM_DETECT_H, hours before a failed node is declared
//! dead, default 1; COFFRE_SIM_STRIPES, simulated stripe groups, default 20 000; COFFRE_SIM_SEED).
//! Each simulated stripe stands for a group of real stripes with the same nodes (their data
//! summed), which is what placement gives a part's stripes anyway.

use coffre_cluster::{FailureDomain, NodeView, ResidencyPolicy};
use coffre_types::{Scheme, VersionId};
use std::collections::{BTreeSet, VecDeque};

const NODES: usize = 1000;
const SITES: usize = 10;
const HOURS: f64 = 8760.0;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// xorshift64*: reproducible, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn exp(&mut self, rate: f64) -> f64 {
        -(1.0 - self.unit()).ln() / rate
    }
}

struct Stripe {
    nodes: Vec<usize>,
    /// Shard indexes lost, each with when its node is declared dead (when it can be repaired).
    lost: Vec<(usize, f64)>,
    min_margin: u8,
}

#[derive(Default, Debug)]
struct Outcome {
    failures: usize,
    zero_margin: usize,
    lost: usize,
    max_queue: usize,
    repaired_tb: f64,
}

fn simulate(scheme: Scheme, stripes_n: usize, seed: u64) -> Outcome {
    let afr: f64 = env("COFFRE_SIM_AFR", 0.02);
    let node_tb: f64 = env("COFFRE_SIM_NODE_TB", 16.0);
    let per_node_mbs: f64 = env("COFFRE_SIM_REPAIR_MBS", 30.0);
    let cap_gbs: f64 = env("COFFRE_SIM_REPAIR_CAP_GBS", 10.0);
    let detect_h: f64 = env("COFFRE_SIM_DETECT_H", 1.0);
    let n = scheme.total();
    let mut rng = Rng(seed | 1);
    let views: Vec<NodeView> = (0..NODES)
        .map(|i| NodeView {
            id: format!("n{i}"),
            country: "FR".into(),
            site: format!("site{}", i % SITES),
            zone: format!("z{i}"),
            up: true,
            free_bytes: 1 << 40,
        })
        .collect();
    let policy = ResidencyPolicy {
        countries: vec!["FR".into()],
        failure_domain: FailureDomain::Site,
        scheme,
    };
    let mut stripes: Vec<Stripe> = Vec::with_capacity(stripes_n);
    let mut on_node: Vec<Vec<usize>> = vec![Vec::new(); NODES];
    for s in 0..stripes_n {
        let mut v = [0u8; 16];
        v[..8].copy_from_slice(&rng.next().to_le_bytes());
        v[8..].copy_from_slice(&(s as u64).to_le_bytes());
        let picked = coffre_cluster::place(&VersionId(v), &views, &policy).expect("placement");
        let nodes: Vec<usize> = picked.into_iter().map(|p| p.expect("every slot placed")).collect();
        for &i in &nodes {
            on_node[i].push(s);
        }
        stripes.push(Stripe {
            nodes,
            lost: Vec::new(),
            min_margin: scheme.parity,
        });
    }
    // Bytes of one shard of one simulated stripe: a node's data over its shards.
    let shard_bytes = node_tb * 1e12 * NODES as f64 / (stripes_n * n) as f64;
    let repair_bps = (per_node_mbs * 1e6 * (NODES - 1) as f64).min(cap_gbs * 1e9);
    let key = |s: usize, st: &Stripe| {
        let margin = coffre_meta::repair_margin(scheme, st.lost.len());
        coffre_meta::keys::repair(margin, &(s as u64).to_be_bytes())
    };
    let mut queue: BTreeSet<Vec<u8>> = BTreeSet::new();
    let mut declared: VecDeque<(f64, usize)> = VecDeque::new();
    let mut dead = vec![false; NODES];
    let mut next_failure: Vec<f64> = (0..NODES).map(|_| rng.exp(afr / HOURS)).collect();
    let mut out = Outcome::default();
    let mut now = 0.0;
    let mut credit = 0.0; // repair bytes available
    loop {
        // The next event: a failure, or a failed node declared dead.
        let (fi, ft) = next_failure
            .iter()
            .enumerate()
            .fold((0, f64::INFINITY), |b, (i, t)| if *t < b.1 { (i, *t) } else { b });
        let dt = declared.front().map_or(f64::INFINITY, |d| d.0);
        let t = ft.min(dt).min(HOURS);
        // Repair until then, in queue order.
        credit += (t - now) * 3600.0 * repair_bps;
        while credit >= shard_bytes {
            let Some(k) = queue.pop_first() else {
                credit = 0.0;
                break;
            };
            let s = u64::from_be_bytes(k[1..9].try_into().unwrap()) as usize;
            let st = &mut stripes[s];
            let Some(at) = st.lost.iter().position(|l| l.1 <= t) else {
                continue; // queued again when its node is declared dead
            };
            let (i, _) = st.lost.swap_remove(at);
            // The new home: a live node in the site with fewest of the stripe's shards.
            let target = loop {
                let c = (rng.next() % NODES as u64) as usize;
                let site_load = st.nodes.iter().filter(|&&x| x % SITES == c % SITES).count();
                if !dead[c] && !st.nodes.contains(&c) && site_load <= n / SITES {
                    break c;
                }
            };
            st.nodes[i] = target;
            on_node[target].push(s);
            credit -= shard_bytes;
            out.repaired_tb += shard_bytes / 1e12;
            if st.lost.iter().any(|l| l.1 <= t) {
                queue.insert(key(s, st));
            }
        }
        now = t;
        if now >= HOURS {
            break;
        }
        if dt <= ft {
            // Declared dead: its stripes join the repair queue.
            let (_, node) = declared.pop_front().unwrap();
            for &s in &on_node[node] {
                if stripes[s].lost.iter().any(|&(i, _)| stripes[s].nodes[i] == node) {
                    queue.insert(key(s, &stripes[s]));
                }
            }
            out.max_queue = out.max_queue.max(queue.len());
            // Replaced by a new empty node (same slot, same site).
            on_node[node].clear();
            dead[node] = false;
            next_failure[node] = now + rng.exp(afr / HOURS);
            continue;
        }
        // A failure: every stripe with a shard there loses it.
        out.failures += 1;
        dead[fi] = true;
        next_failure[fi] = f64::INFINITY;
        for &s in &on_node[fi] {
            let st = &mut stripes[s];
            let Some(i) = st.nodes.iter().position(|&x| x == fi) else {
                continue;
            };
            if st.lost.iter().any(|l| l.0 == i) {
                continue;
            }
            // Its place in the queue moves with its margin.
            let was = (!st.lost.is_empty()).then(|| key(s, st));
            st.lost.push((i, now + detect_h));
            if let Some(k) = was {
                if queue.remove(&k) {
                    queue.insert(key(s, st));
                }
            }
            let margin = coffre_meta::repair_margin(scheme, st.lost.len());
            if st.lost.len() > scheme.parity as usize {
                out.lost += 1;
            } else if margin == 0 && st.min_margin > 0 {
                out.zero_margin += 1;
            }
            st.min_margin = st.min_margin.min(margin);
        }
        declared.push_back((now + detect_h, fi));
    }
    out
}

fn main() {
    let stripes: usize = env("COFFRE_SIM_STRIPES", 20_000);
    let seed: u64 = env("COFFRE_SIM_SEED", 7);
    println!(
        "durability simulation: {NODES} nodes in {SITES} sites, one year, AFR {}, {} TB a node, repair {} MB/s a node (cap {} GB/s), declared dead after {} h",
        env("COFFRE_SIM_AFR", 0.02),
        env("COFFRE_SIM_NODE_TB", 16.0),
        env("COFFRE_SIM_REPAIR_MBS", 30.0),
        env("COFFRE_SIM_REPAIR_CAP_GBS", 10.0),
        env("COFFRE_SIM_DETECT_H", 1.0)
    );
    for scheme in [Scheme { data: 4, parity: 2 }, Scheme { data: 8, parity: 3 }] {
        let t = std::time::Instant::now();
        let o = simulate(scheme, stripes, seed);
        println!(
            "{}+{}: {} disk failures, {:.0} TB rebuilt, {} of {stripes} stripe groups reached zero margin, {} lost; largest repair queue {} ({:.1} s)",
            scheme.data,
            scheme.parity,
            o.failures,
            o.repaired_tb,
            o.zero_margin,
            o.lost,
            o.max_queue,
            t.elapsed().as_secs_f64()
        );
    }
}
