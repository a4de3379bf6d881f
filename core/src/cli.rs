//! Parsers the services' command lines share.

/// Parses a byte size: a plain number, or one with a KB/MB/GB (powers of 1000) or
/// KiB/MiB/GiB (powers of 1024) suffix.
///
/// # Errors
/// A message showing the accepted forms.
pub fn parse_bytes(value: &str) -> Result<u64, String> {
    let value = value.trim();
    let split = value.find(|c: char| !c.is_ascii_digit()).unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: u64 =
        number.parse().map_err(|_| format!("{value:?} is not a size like 1GiB, 512MiB or 1000000"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return Err(format!("{value:?} has an unknown unit; use B, KB, MB, GB, KiB, MiB or GiB")),
    };
    number.checked_mul(factor).ok_or_else(|| format!("{value:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes() {
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_bytes("32MiB"), Ok(32 << 20));
        assert_eq!(parse_bytes("25000000"), Ok(25_000_000));
        assert_eq!(parse_bytes("2 GB"), Ok(2_000_000_000));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("1PiB").is_err());
    }
}
