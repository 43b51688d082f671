//! The ARM flags (`--max-rps`, `--timeout`, `--concurrency`, `--cache-dir`, `--cache-ttl`,
//! `--no-cache`, `--refresh`) and the duration syntax they share.
//!
//! Flags are validated here (clap reports the error with the flag name); turning them into
//! [`ArmOptions`] must not touch the file system or the network.

use std::path::PathBuf;
use std::time::Duration;

use super::{ArmOptions, CacheOptions};

/// ARM request policy flags; flatten into any command that talks to ARM.
#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct ArmArgs {
    /// Most ARM requests per second per subscription. Azure refills 25 reads per second per
    /// subscription and principal; staying below leaves room for the cluster's own cloud provider.
    #[arg(long, value_name = "N", default_value = "10", value_parser = parse_rps)]
    pub max_rps: f64,
    /// Overall deadline for ARM collection, e.g. 90s, 10m, 1h. Throttling is waited out until
    /// then; whatever is still missing is reported as a gap.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// Most ARM requests in flight at once, across all subscriptions and lists.
    #[arg(long, value_name = "N", default_value_t = super::DEFAULT_CONCURRENCY, value_parser = parse_concurrency)]
    pub concurrency: usize,
    /// Response cache directory (default: $XDG_CACHE_HOME/azaudit or ~/.cache/azaudit).
    #[arg(long, value_name = "DIR", env = "AZAUDIT_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// How long cached ARM responses are used, e.g. 10m, 1h, 0s.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub cache_ttl: Duration,
    /// Neither read nor write the response cache.
    #[arg(long, conflicts_with = "refresh")]
    pub no_cache: bool,
    /// Ignore cached responses, fetch everything again and rewrite the cache.
    #[arg(long)]
    pub refresh: bool,
    /// Most ARM writes (PUT, DELETE) per second per subscription; only `cleanup apply` writes.
    /// Azure refills 10 writes and 10 deletes per second per subscription and principal.
    #[arg(long, value_name = "N", default_value = "1", value_parser = parse_rps)]
    pub max_writes_per_second: f64,
    /// Wait between polls of a write's long-running operation when ARM sends no Retry-After.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_timeout, hide = true)]
    pub poll_interval: Duration,
    /// Attempts per request for server errors, timeouts and broken bodies (exponential backoff
    /// with jitter between them); 429s are waited out without a cap, until --timeout.
    #[arg(long, value_name = "N", default_value_t = super::DEFAULT_MAX_ATTEMPTS_5XX, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub max_attempts: u32,
}

impl ArmArgs {
    pub fn options(&self) -> ArmOptions {
        ArmOptions {
            max_rps: self.max_rps,
            timeout: self.timeout,
            concurrency: self.concurrency,
            cache: CacheOptions {
                dir: self.cache_dir.clone(),
                ttl: self.cache_ttl,
                enabled: !self.no_cache,
                refresh: self.refresh,
            },
            max_attempts_5xx: self.max_attempts,
            max_writes_per_second: self.max_writes_per_second,
            poll_interval: self.poll_interval,
            ..ArmOptions::default()
        }
    }
}

fn parse_rps(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number: give requests per second, e.g. 10 or 2.5"))?;
    if !v.is_finite() || v <= 0.0 || v > 1000.0 {
        return Err(format!(
            "{s} is out of range: give a rate above 0 and at most 1000 requests per second"
        ));
    }
    Ok(v)
}

fn parse_concurrency(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=256).contains(&n) => Ok(n),
        _ => Err(format!(
            "{s:?} is not a concurrency: give a whole number from 1 to 256"
        )),
    }
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err("a timeout of 0 would stop before the first request: give e.g. 90s or 10m".into());
    }
    Ok(d)
}

/// Parses durations like `90s`, `10m`, `1h30m`, `500ms`, `2d`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let bad = || format!("{s:?} is not a duration: use e.g. 90s, 10m, 1h30m, 500ms or a number of seconds");
    if t.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "ms" => Duration::from_millis(n),
            "s" | "sec" | "secs" => Duration::from_secs(n),
            "m" | "min" | "mins" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            "d" => Duration::from_secs(n.saturating_mul(86_400)),
            _ => return Err(bad()),
        };
        total = total.saturating_add(part);
    }
    Ok(total)
}

/// Formats a duration the way the flags take it (`10m`, `90s`, `1h30m`, `250ms`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if !ms.is_multiple_of(1000) {
        return if ms < 1000 {
            format!("{ms}ms")
        } else {
            format!("{:.1}s", d.as_secs_f64())
        };
    }
    let mut secs = d.as_secs();
    let mut out = String::new();
    for (unit, len) in [("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= len {
            out.push_str(&format!("{}{unit}", secs / len));
            secs %= len;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct T {
        #[command(flatten)]
        arm: ArmArgs,
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("42"), Ok(Duration::from_secs(42)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        for bad in ["", "m", "10x", "1.5m", "-3s", "s10"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("use e.g. 90s"), "{bad}: {e}");
        }
        assert_eq!(format_duration(Duration::from_secs(600)), "10m");
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
    }

    #[test]
    fn defaults_and_flags() {
        let t = T::try_parse_from(["x"]).unwrap();
        assert_eq!(t.arm.options(), ArmOptions::default());
        let t = T::try_parse_from([
            "x",
            "--max-rps",
            "2.5",
            "--timeout",
            "90s",
            "--concurrency",
            "3",
            "--cache-dir",
            "/tmp/c",
            "--cache-ttl",
            "1h",
            "--refresh",
        ])
        .unwrap();
        let o = t.arm.options();
        assert_eq!(o.max_rps, 2.5);
        assert_eq!(o.timeout, Duration::from_secs(90));
        assert_eq!(o.concurrency, 3);
        assert_eq!(o.cache.dir, Some(PathBuf::from("/tmp/c")));
        assert_eq!(o.cache.ttl, Duration::from_secs(3600));
        assert!(o.cache.enabled && o.cache.refresh);
        assert!(
            !T::try_parse_from(["x", "--no-cache"])
                .unwrap()
                .arm
                .options()
                .cache
                .enabled
        );
        for bad in [
            &["x", "--max-rps", "0"][..],
            &["x", "--max-rps", "fast"],
            &["x", "--timeout", "0s"],
            &["x", "--concurrency", "0"],
            &["x", "--no-cache", "--refresh"],
            &["x", "--max-writes-per-second", "0"],
        ] {
            assert!(T::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }
}
