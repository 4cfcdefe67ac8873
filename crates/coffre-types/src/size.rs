//! Sizes as operators write them: `512M`, `10G`, `2TiB` (whole numbers with a binary unit).

/// Bytes from a whole number with an optional binary suffix: K, M, G, T, P, E (each also with
/// `i`, `B` or `iB` after it: `10G`, `10GiB`, `10GB` all mean 10 × 2³⁰).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, suffix) = t.split_at(digits);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a size (a whole number, optionally with K, M, G, T, P or E)"))?;
    let unit = suffix.trim_start().to_ascii_uppercase();
    let unit = unit.strip_suffix('B').unwrap_or(&unit);
    let unit = unit.strip_suffix('I').unwrap_or(unit);
    let shift = match unit {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        "P" => 50,
        "E" => 60,
        _ => return Err(format!("{s:?}: unknown unit (K, M, G, T, P or E)")),
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{s:?} is more than 16 EiB"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_operators_write_them() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("10G"), Ok(10 << 30));
        assert_eq!(parse_size("10GiB"), Ok(10 << 30));
        assert_eq!(parse_size("10gb"), Ok(10 << 30));
        assert_eq!(parse_size(" 2 T "), Ok(2 << 40));
        assert_eq!(parse_size("15E"), Ok(15 << 60));
        for bad in ["", "G", "-1", "1.5G", "10X", "16E", "99999999999999999999"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn a_size_written_with_its_unit_reads_back(n in 0u64..1024, shift in 0usize..6) {
            let units = ["", "K", "M", "G", "T", "P"];
            let bytes = n << (10 * shift);
            proptest::prop_assert_eq!(parse_size(&format!("{n}{}", units[shift])), Ok(bytes));
            proptest::prop_assert_eq!(parse_size(&bytes.to_string()), Ok(bytes));
        }
    }
}
