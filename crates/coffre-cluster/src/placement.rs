//! Residency-enforcing placement. A bucket's `ResidencyPolicy` names the countries its data may
//! live in, its failure domain and its erasure scheme. `place` picks `k+m` distinct compliant
//! nodes that are up, spread over failure domains, by weighted rendezvous hashing on the version
//! id (weight: free space); it never picks a node outside the policy. Fewer than `k+m` up: the
//! missing shard slots are left empty (recorded for healing); fewer than the write quorum: an
//! error that names the policy.

use coffre_types::{Scheme, VersionId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FailureDomain {
    Node,
    Zone,
    Site,
}

impl std::str::FromStr for FailureDomain {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "node" => Ok(FailureDomain::Node),
            "zone" => Ok(FailureDomain::Zone),
            "site" => Ok(FailureDomain::Site),
            _ => Err(format!("failure domain {s:?}: node, zone or site")),
        }
    }
}

impl std::fmt::Display for FailureDomain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FailureDomain::Node => "node",
            FailureDomain::Zone => "zone",
            FailureDomain::Site => "site",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResidencyPolicy {
    pub countries: Vec<String>,
    pub failure_domain: FailureDomain,
    pub scheme: Scheme,
}

impl std::fmt::Display for ResidencyPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "countries {}, scheme {}, failure domain {}",
            self.countries.join(","),
            self.scheme,
            self.failure_domain
        )
    }
}

/// What placement needs to know of a node.
#[derive(Clone, Debug)]
pub struct NodeView {
    pub id: String,
    pub country: String,
    pub site: String,
    pub zone: String,
    pub up: bool,
    pub free_bytes: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub struct PlacementError {
    pub policy: String,
    pub compliant_up: usize,
    pub quorum: usize,
}

impl std::fmt::Display for PlacementError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "write refused by the bucket's residency policy ({}): {} compliant node(s) up, {} needed; no shard is ever placed outside the policy",
            self.policy, self.compliant_up, self.quorum
        )
    }
}

fn score(version: &VersionId, n: &NodeView) -> f64 {
    let mut h = blake3::Hasher::new();
    h.update(&version.0);
    h.update(n.id.as_bytes());
    let x = u64::from_le_bytes(h.finalize().as_bytes()[..8].try_into().unwrap_or_default());
    // Weighted rendezvous: weight / -ln(u), u uniform in (0, 1).
    let u = (x as f64 + 1.0) / (u64::MAX as f64 + 2.0);
    let weight = (n.free_bytes as f64 / (1u64 << 30) as f64).max(1.0);
    weight / -u.ln()
}

/// Node index (into `nodes`) for each shard index, `None` where no compliant node is up.
pub fn place(
    version: &VersionId,
    nodes: &[NodeView],
    policy: &ResidencyPolicy,
) -> Result<Vec<Option<usize>>, PlacementError> {
    let total = policy.scheme.total();
    let quorum = policy.scheme.write_quorum();
    let mut up: Vec<(f64, usize)> = nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.up && policy.countries.contains(&n.country))
        .map(|(i, n)| (score(version, n), i))
        .collect();
    if up.len() < quorum {
        return Err(PlacementError {
            policy: policy.to_string(),
            compliant_up: up.len(),
            quorum,
        });
    }
    up.sort_by(|a, b| b.0.total_cmp(&a.0));
    // Group by failure domain, domains ordered by their best node, then take one node per
    // domain per round: shards spread over as many domains as there are.
    let domain = |i: usize| -> String {
        let n = &nodes[i];
        match policy.failure_domain {
            FailureDomain::Node => n.id.clone(),
            FailureDomain::Zone => format!("{}/{}", n.site, n.zone),
            FailureDomain::Site => n.site.clone(),
        }
    };
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for (_, i) in &up {
        let d = domain(*i);
        match groups.iter_mut().find(|(g, _)| *g == d) {
            Some((_, v)) => v.push(*i),
            None => groups.push((d, vec![*i])),
        }
    }
    let mut picked = Vec::with_capacity(total);
    let mut round = 0;
    while picked.len() < total && picked.len() < up.len() {
        for (_, members) in &groups {
            if let Some(&i) = members.get(round) {
                if picked.len() < total {
                    picked.push(Some(i));
                }
            }
        }
        round += 1;
    }
    picked.resize(total, None);
    Ok(picked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cluster() -> Vec<NodeView> {
        let mut v = Vec::new();
        for (i, (c, s)) in [
            ("FR", "par1"),
            ("FR", "par1"),
            ("FR", "par2"),
            ("FR", "par2"),
            ("FR", "lyo1"),
            ("FR", "lyo1"),
            ("DE", "fra1"),
            ("DE", "fra1"),
        ]
        .iter()
        .enumerate()
        {
            v.push(NodeView {
                id: format!("n{i}"),
                country: c.to_string(),
                site: s.to_string(),
                zone: "a".into(),
                up: true,
                free_bytes: 100 << 30,
            });
        }
        v
    }

    fn fr() -> ResidencyPolicy {
        ResidencyPolicy {
            countries: vec!["FR".into()],
            failure_domain: FailureDomain::Site,
            scheme: Scheme::DEFAULT,
        }
    }

    proptest! {
        #[test]
        fn never_outside_policy_and_distinct(v: [u8; 16], down in prop::collection::vec(0usize..8, 0..4)) {
            let mut nodes = cluster();
            for d in &down { nodes[*d].up = false; }
            match place(&VersionId(v), &nodes, &fr()) {
                Ok(p) => {
                    let chosen: Vec<usize> = p.iter().flatten().copied().collect();
                    prop_assert!(chosen.iter().all(|i| nodes[*i].country == "FR" && nodes[*i].up));
                    let mut dedup = chosen.clone();
                    dedup.sort();
                    dedup.dedup();
                    prop_assert_eq!(dedup.len(), chosen.len());
                    prop_assert!(chosen.len() >= 5);
                    // Spread: with 3 sites and 6 shards, each up site gets at most 2.
                    for site in ["par1", "par2", "lyo1"] {
                        prop_assert!(chosen.iter().filter(|i| nodes[**i].site == site).count() <= 2);
                    }
                }
                Err(e) => {
                    let up_fr = nodes.iter().filter(|n| n.up && n.country == "FR").count();
                    prop_assert!(up_fr < 5);
                    prop_assert_eq!(e.compliant_up, up_fr);
                }
            }
        }
    }

    #[test]
    fn four_fr_up_refuses_fr_only_but_not_fr_de() {
        let mut nodes = cluster();
        nodes[0].up = false;
        nodes[1].up = false;
        let e = place(&VersionId([1; 16]), &nodes, &fr()).unwrap_err();
        assert_eq!((e.compliant_up, e.quorum), (4, 5));
        assert!(e.to_string().contains("countries FR"));
        let both = ResidencyPolicy {
            countries: vec!["FR".into(), "DE".into()],
            ..fr()
        };
        let p = place(&VersionId([1; 16]), &nodes, &both).unwrap();
        assert!(p.iter().all(Option::is_some));
        nodes[2].up = false;
        nodes[0].up = true;
        nodes[1].up = true;
        let p = place(&VersionId([1; 16]), &nodes, &fr()).unwrap();
        assert_eq!(
            p.iter().filter(|x| x.is_none()).count(),
            1,
            "five up: one slot missing, to heal"
        );
    }
}
