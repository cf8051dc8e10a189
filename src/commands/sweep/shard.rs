//! Which points a process trains: shard I of N takes points I, I + N, I + 2N, ... (0-based, in
//! the sweep's order), a deterministic split that balances the count. The shard comes from
//! `--shard I/N`, else from a Slurm job array (`SLURM_ARRAY_TASK_ID` - `SLURM_ARRAY_TASK_MIN`
//! of `SLURM_ARRAY_TASK_COUNT`), else from a Kubernetes Indexed Job (`JOB_COMPLETION_INDEX`,
//! with the count given as `--shards N`).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// The whole sweep in one process.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Whether point `i` (0-based, in the sweep's order) is this shard's.
    pub fn owns(&self, i: usize) -> bool {
        i % self.count == self.index
    }
}

impl Shard {
    /// The points this shard owns when the sweep trains stacked: the groups' points in order,
    /// cut into `count` consecutive runs as even as can be (sizes differ by at most one), so a
    /// group is split only where the balance needs it (at most `count - 1` cuts).
    pub fn owned_of_groups(&self, groups: &[Vec<usize>]) -> Vec<usize> {
        let order: Vec<usize> = groups.concat();
        let (base, extra) = (order.len() / self.count, order.len() % self.count);
        let start = self.index * base + self.index.min(extra);
        let len = base + usize::from(self.index < extra);
        order[start..start + len].to_vec()
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ShardError {
    #[error("--shard {0}: expected I/N with 0 <= I < N, e.g. --shard 0/4")]
    Flag(String),
    #[error("{name}={value}: {why}")]
    Env {
        name: &'static str,
        value: String,
        why: String,
    },
    #[error("JOB_COMPLETION_INDEX={0} (a Kubernetes Indexed Job) needs the shard count: pass --shards N (the Job's completions)")]
    NoCount(String),
}

/// `I/N`.
pub fn parse(s: &str) -> Result<Shard, ShardError> {
    let bad = || ShardError::Flag(s.to_string());
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (index, count): (usize, usize) = (
        i.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if count == 0 || index >= count {
        return Err(bad());
    }
    Ok(Shard { index, count })
}

/// The shard of this process: `flag` (`--shard`), else the scheduler's variables read through
/// `env`, else the whole sweep. `shards` is `--shards`.
pub fn resolve(
    flag: Option<&str>,
    shards: Option<usize>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Shard, ShardError> {
    if let Some(s) = flag {
        return parse(s);
    }
    let num = |name: &'static str| -> Result<Option<usize>, ShardError> {
        match env(name) {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| ShardError::Env {
                name,
                value: v.clone(),
                why: "not a whole number".into(),
            }),
        }
    };
    if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
        let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
        let count = match shards {
            Some(n) => n,
            None => num("SLURM_ARRAY_TASK_COUNT")?.ok_or(ShardError::Env {
                name: "SLURM_ARRAY_TASK_ID",
                value: id.to_string(),
                why: "SLURM_ARRAY_TASK_COUNT is not set: pass --shards N".into(),
            })?,
        };
        let index = id
            .checked_sub(min)
            .filter(|&i| i < count)
            .ok_or(ShardError::Env {
                name: "SLURM_ARRAY_TASK_ID",
                value: id.to_string(),
                why: format!(
                    "outside the array of {count} tasks from {min} (use --array=0-{})",
                    count.saturating_sub(1)
                ),
            })?;
        return Ok(Shard { index, count });
    }
    if let Some(index) = num("JOB_COMPLETION_INDEX")? {
        let count = shards.ok_or(ShardError::NoCount(index.to_string()))?;
        if index >= count {
            return Err(ShardError::Env {
                name: "JOB_COMPLETION_INDEX",
                value: index.to_string(),
                why: format!("not below --shards {count}"),
            });
        }
        return Ok(Shard { index, count });
    }
    match shards {
        Some(n) if n > 1 => Err(ShardError::Flag(format!(
            "(none, with --shards {n}): say which with --shard I/{n}"
        ))),
        _ => Ok(Shard::ALL),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn flags_and_schedulers_name_the_shard() {
        assert_eq!(parse("1/4"), Ok(Shard { index: 1, count: 4 }));
        assert!(parse("4/4").is_err() && parse("1").is_err() && parse("0/0").is_err());
        assert_eq!(resolve(None, None, env(&[])), Ok(Shard::ALL));
        let slurm = [
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ];
        assert_eq!(
            resolve(None, None, env(&slurm)),
            Ok(Shard { index: 2, count: 4 })
        );
        // The flag wins over the environment.
        assert_eq!(
            resolve(Some("0/2"), None, env(&slurm)),
            Ok(Shard { index: 0, count: 2 })
        );
        let k8s = [("JOB_COMPLETION_INDEX", "2")];
        assert_eq!(
            resolve(None, Some(3), env(&k8s)),
            Ok(Shard { index: 2, count: 3 })
        );
        assert!(matches!(
            resolve(None, None, env(&k8s)),
            Err(ShardError::NoCount(_))
        ));
        assert!(resolve(None, Some(2), env(&k8s)).is_err());
        // Round robin: every point has exactly one owner, and counts differ by at most one.
        let owners: Vec<usize> = (0..10)
            .map(|i| {
                (0..3)
                    .filter(|&s| Shard { index: s, count: 3 }.owns(i))
                    .count()
            })
            .collect();
        assert!(owners.iter().all(|&o| o == 1));
    }
}
