//! `hakit rfsverify`: the primary compares its replicated directories (read underneath its
//! overlays) with the SECOND's, by manifest: metadata, then content block by block. Entries
//! found different are compared a second time before being reported, so that a write in
//! flight between the two replicas during the comparison is not reported as a difference.

use super::DataConfig;
use super::replicate::Backing;
use rfs_fuse::compare::Difference;
use rfs_fuse::link::fetch_manifest;
use rfs_fuse::sync::manifest::{RootManifest, differences, walk};
use std::collections::BTreeSet;
use std::os::fd::AsFd;
use std::path::PathBuf;

/// Content is compared in blocks of this size (here and by the compare-based copy).
pub(super) const MANIFEST_BLOCK: u32 = 1 << 20;

/// What `rfsverify` prints, and whether the replicas are identical.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct VerifyReport {
    pub identical: bool,
    pub text: String,
}

/// Why the replicas could not be compared.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("no peer to compare with: asking the SECOND at {peer} for its manifest: {source}")]
    NoPeer {
        peer: std::net::SocketAddr,
        #[source]
        source: rfs_fuse::link::LinkError,
    },
    #[error("listing {dir} on this node: {source}")]
    Local {
        dir: PathBuf,
        #[source]
        source: rfs_fuse::sync::manifest::ManifestError,
    },
    #[error("{0} replicated directories: more than the protocol numbers")]
    TooManyDirs(usize),
}

/// The differences of each replicated directory, in configuration order.
type Found = Vec<Vec<Difference>>;

/// Compares both replicas; differences of a first pass are reported only if a second pass
/// finds them again.
pub(super) fn verify(cfg: &DataConfig, backing: &Backing) -> Result<VerifyReport, VerifyError> {
    let first = compare(cfg, backing)?;
    if first.iter().all(Vec::is_empty) {
        return Ok(report(cfg, &first, None));
    }
    let second = compare(cfg, backing)?;
    let persisting: Found = first
        .iter()
        .zip(second)
        .map(|(before, now)| persisting(before, now))
        .collect();
    let seen: usize = first.iter().map(Vec::len).sum();
    Ok(report(cfg, &persisting, Some(seen)))
}

/// One pass: the peer's manifests, then ours, compared directory by directory.
fn compare(cfg: &DataConfig, backing: &Backing) -> Result<Found, VerifyError> {
    let count =
        u16::try_from(cfg.dirs.len()).map_err(|_| VerifyError::TooManyDirs(cfg.dirs.len()))?;
    let theirs =
        fetch_manifest(cfg.peer, &cfg.module, count, MANIFEST_BLOCK).map_err(|source| {
            VerifyError::NoPeer {
                peer: cfg.peer,
                source,
            }
        })?;
    let ours = local_manifests(cfg, backing)?;
    Ok(ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| differences(&a.entries, &b.entries))
        .collect())
}

fn local_manifests(cfg: &DataConfig, backing: &Backing) -> Result<Vec<RootManifest>, VerifyError> {
    cfg.dirs
        .iter()
        .zip(&backing.dirs)
        .map(|(dir, file)| {
            walk(file.as_fd(), MANIFEST_BLOCK, cfg.nbrei)
                .map(|entries| RootManifest { entries })
                .map_err(|source| VerifyError::Local {
                    dir: dir.clone(),
                    source,
                })
        })
        .collect()
}

/// The differences of `now` whose paths also differed `before`.
fn persisting(before: &[Difference], now: Vec<Difference>) -> Vec<Difference> {
    let paths: BTreeSet<&std::path::Path> = before.iter().map(Difference::path).collect();
    now.into_iter()
        .filter(|d| paths.contains(d.path()))
        .collect()
}

/// The text `rfsverify` prints; `first_pass` is how many differences a first pass saw when
/// a second one was needed.
fn report(cfg: &DataConfig, found: &Found, first_pass: Option<usize>) -> VerifyReport {
    let mut lines = vec![format!(
        "{}: this node ({}) compared with the SECOND at {}, content in blocks of {} KiB",
        cfg.module,
        cfg.me,
        cfg.peer,
        MANIFEST_BLOCK >> 10
    )];
    if let Some(seen) = first_pass {
        lines.push(format!(
            "{seen} difference(s) in a first pass: those entries were compared again, and only \
             what still differs is reported (writes in flight settle in between)"
        ));
    }
    for (dir, differences) in cfg.dirs.iter().zip(found) {
        if differences.is_empty() {
            lines.push(format!("{}: identical", dir.display()));
            continue;
        }
        lines.push(format!(
            "{}: {} difference(s) (first tree: this node, second tree: the SECOND)",
            dir.display(),
            differences.len()
        ));
        lines.extend(differences.iter().map(|d| format!("  {d}")));
    }
    VerifyReport {
        identical: found.iter().all(Vec::is_empty),
        text: lines.join("\n"),
    }
}
