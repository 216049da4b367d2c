//! Which buckets change owner between two tables.

use super::{BucketTable, TableError};

/// A bucket whose owner differs between two tables (`None`: nobody owned / owns it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BucketMove {
    pub bucket: usize,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// Every bucket that changed owner, in increasing bucket order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Moves {
    pub moves: Vec<BucketMove>,
}

impl Moves {
    pub fn len(&self) -> usize {
        self.moves.len()
    }

    pub fn is_empty(&self) -> bool {
        self.moves.is_empty()
    }

    /// How many buckets `name` gains and loses.
    pub fn gained_lost(&self, name: &str) -> (usize, usize) {
        let gained = self
            .moves
            .iter()
            .filter(|m| m.to.as_deref() == Some(name))
            .count();
        let lost = self
            .moves
            .iter()
            .filter(|m| m.from.as_deref() == Some(name))
            .count();
        (gained, lost)
    }
}

/// The buckets whose owner differs from `old` to `new`; both must have the same size.
pub fn diff(old: &BucketTable, new: &BucketTable) -> Result<Moves, TableError> {
    if old.bucket_count() != new.bucket_count() {
        return Err(TableError::SizeMismatch {
            old: old.bucket_count(),
            new: new.bucket_count(),
        });
    }
    let moves = (0..new.bucket_count())
        .filter_map(|bucket| {
            let (from, to) = (old.owner(bucket), new.owner(bucket));
            (from != to).then(|| BucketMove {
                bucket,
                from: from.map(str::to_string),
                to: to.map(str::to_string),
            })
        })
        .collect();
    Ok(Moves { moves })
}
