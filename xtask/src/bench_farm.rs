//! `cargo xtask bench farm`, lab part: time from a farm node's death (SIGKILL of its daemon)
//! to the new table installed in the XDP filters of both survivors, read from their module
//! logs' timestamps. Three nodes (powers 2/1/1, pulse 100 ms, mlost_count 20: detection
//! after 2 s of silence); each run kills the next node, then restarts it and waits for the
//! full view again.

use std::time::{Duration, SystemTime};

use anyhow::{Result, bail};
use hakit_lab::farm::{Farm, FarmConfig};
use hakit_lab::{DEADLINE, wait_until};

pub fn death_to_table(bin: &std::path::Path, runs: usize) -> Result<()> {
    if runs == 0 {
        bail!("--runs must be at least 1");
    }
    let config = FarmConfig::default();
    let detection = Duration::from_millis(100) * config.mlost_count;
    println!(
        "farm death -> new table installed on every survivor: pulse {}, mlost_count {} \
         (detection {} ms), {runs} runs (release build)",
        config.pulse,
        config.mlost_count,
        detection.as_millis()
    );
    let mut farm = Farm::with_bin("bench-farm", config, 0, bin)?;
    let mut times = Vec::with_capacity(runs);
    farm.scenario(|f| {
        f.start_all()?;
        f.wait_view(&[0, 1, 2])?;
        for run in 0..runs {
            let victim = run % 3;
            let survivors: Vec<usize> = (0..3).filter(|&i| i != victim).collect();
            let names: Vec<String> = survivors
                .iter()
                .map(|&i| f.nodes[i].name().to_string())
                .collect();
            let marker = format!("table of view {{{}}} (", names.join(","));
            let killed_at = SystemTime::now();
            f.nodes[victim].kill_daemon()?;
            let mut installed = Vec::new();
            for &i in &survivors {
                let mut at = None;
                wait_until(
                    &format!("{} to install {marker}...", f.nodes[i].name()),
                    DEADLINE,
                    || {
                        at = installed_after(&f.module_log(i)?, &marker, killed_at);
                        Ok(at.is_some())
                    },
                )?;
                installed.extend(at);
            }
            let last = installed.into_iter().max().unwrap_or(killed_at);
            let took = last.duration_since(killed_at).unwrap_or_default();
            println!(
                "run {:>2}: {} killed -> table installed on {} in {} ms",
                run + 1,
                f.nodes[victim].name(),
                names.join(" and "),
                took.as_millis()
            );
            times.push(took);
            f.nodes[victim].start_daemon()?;
            f.wait_view(&[0, 1, 2])?;
        }
        Ok(())
    })?;
    times.sort();
    let ms = |d: Duration| d.as_millis();
    let median = times[times.len() / 2];
    println!(
        "farm death -> new table: median {} ms, min {} ms, max {} ms over {} runs; \
         {:.2} x the detection time ({} ms); beyond detection: median {} ms",
        ms(median),
        ms(times[0]),
        ms(times[times.len() - 1]),
        times.len(),
        median.as_secs_f64() / detection.as_secs_f64(),
        ms(detection),
        ms(median.saturating_sub(detection))
    );
    Ok(())
}

/// The time of the first log line containing `marker` and "installed" logged after `after`.
fn installed_after(log: &str, marker: &str, after: SystemTime) -> Option<SystemTime> {
    log.lines()
        .filter(|l| l.contains(marker) && l.contains(") installed: "))
        .filter_map(|l| l.split_whitespace().next().and_then(parse_rfc3339_millis))
        .find(|t| *t >= after)
}

/// `2025-06-01T12:34:56.789Z` (what the module log writes) as a time.
fn parse_rfc3339_millis(text: &str) -> Option<SystemTime> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, millis) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (h, min, s) = (t.next()??, t.next()??, t.next()??);
    let millis: i64 = millis.parse().ok()?;
    let days = days_from_civil(y, m, day);
    let total = ((days * 24 + h) * 60 + min) * 60 + s;
    let ms = u64::try_from(total * 1000 + millis).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_millis(ms))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_timestamps_parse() {
        let t = parse_rfc3339_millis("2024-03-01T00:00:01.250Z").expect("parses");
        let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        assert_eq!(since.as_millis(), 1_709_251_201_250);
        assert_eq!(parse_rfc3339_millis("yesterday"), None);
        let log = "2024-03-01T00:00:01.250Z I table of view {node1,node2} (id 1234) installed: x";
        let before = SystemTime::UNIX_EPOCH + Duration::from_millis(1_709_251_201_000);
        assert!(installed_after(log, "table of view {node1,node2} (", before).is_some());
        let after = SystemTime::UNIX_EPOCH + Duration::from_millis(1_709_251_202_000);
        assert!(installed_after(log, "table of view {node1,node2} (", after).is_none());
    }
}
