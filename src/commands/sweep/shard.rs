//! Which points a process trains: shard I of N takes points I, I + N, I + 2N, ... (0-based, in
//! the sweep's order), a deterministic split that balances the count. The shard comes from
//! `--shard I/N`, else from a Slurm job array (the task's place in the array: `(ID - MIN) /
//! STEP` of `SLURM_ARRAY_TASK_COUNT`), else from a Kubernetes Indexed Job
//! (`JOB_COMPLETION_INDEX`, with the count given as `--shards N`).
//!
//! Any task id is a shard or a helper, never an error: a sparse or retried array (`--array=0,2`
//! to rerun the failed tasks, `--array=0-4:2`) has ids whose place the environment does not
//! tell. A helper owns no points; like every shard once its own are done, it trains the points
//! that no process holds and that are not done, so every point is still trained exactly once.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// The whole sweep in one process.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// A process that owns no points and takes those that no process holds (`index == count`).
    pub fn helper(count: usize) -> Shard {
        Shard {
            index: count,
            count,
        }
    }

    pub fn is_helper(&self) -> bool {
        self.index >= self.count
    }

    /// Whether point `i` (0-based, in the sweep's order) is this shard's.
    pub fn owns(&self, i: usize) -> bool {
        !self.is_helper() && i % self.count == self.index
    }
}

impl Shard {
    /// The points this shard owns when the sweep trains stacked: the groups' points in order,
    /// cut into `count` consecutive runs as even as can be (sizes differ by at most one), so a
    /// group is split only where the balance needs it (at most `count - 1` cuts).
    pub fn owned_of_groups(&self, groups: &[Vec<usize>]) -> Vec<usize> {
        if self.is_helper() {
            return Vec::new();
        }
        let order: Vec<usize> = groups.concat();
        let (base, extra) = (order.len() / self.count, order.len() % self.count);
        let start = self.index * base + self.index.min(extra);
        let len = base + usize::from(self.index < extra);
        order[start..start + len].to_vec()
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_helper() {
            write!(f, "helper of {}", self.count)
        } else {
            write!(f, "{}/{}", self.index, self.count)
        }
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
        let step = num("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
        let count = match shards {
            Some(n) => n,
            None => num("SLURM_ARRAY_TASK_COUNT")?.ok_or(ShardError::Env {
                name: "SLURM_ARRAY_TASK_ID",
                value: id.to_string(),
                why: "SLURM_ARRAY_TASK_COUNT is not set: pass --shards N".into(),
            })?,
        };
        if count == 0 {
            return Ok(Shard::ALL);
        }
        // The place of the id in a regular array (MIN, MIN + STEP, ...); an id off that grid
        // or past COUNT places (a sparse list such as 1,3, a retry) helps.
        let index = id
            .checked_sub(min)
            .filter(|off| off % step == 0)
            .map(|off| off / step)
            .filter(|&i| i < count);
        return Ok(index.map_or(Shard::helper(count), |index| Shard { index, count }));
    }
    if let Some(index) = num("JOB_COMPLETION_INDEX")? {
        let count = shards.ok_or(ShardError::NoCount(index.to_string()))?;
        if count == 0 {
            return Ok(Shard::ALL);
        }
        return Ok(if index < count {
            Shard { index, count }
        } else {
            Shard::helper(count)
        });
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
        assert_eq!(resolve(None, Some(2), env(&k8s)), Ok(Shard::helper(2)));
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

    /// Sparse, stepped and retried arrays: every id is a shard or a helper, never an error.
    #[test]
    fn any_array_task_is_a_shard_or_a_helper() {
        let task = |id: &str, min: &str, max: &str, step: &str, count: &str| {
            let vars = [
                ("SLURM_ARRAY_TASK_ID", id),
                ("SLURM_ARRAY_TASK_MIN", min),
                ("SLURM_ARRAY_TASK_MAX", max),
                ("SLURM_ARRAY_TASK_STEP", step),
                ("SLURM_ARRAY_TASK_COUNT", count),
            ];
            resolve(None, None, env(&vars)).expect("never an error")
        };
        // --array=0-4:2: ids 0, 2, 4 are shards 0, 1, 2 of 3.
        let stepped: Vec<Shard> = ["0", "2", "4"]
            .iter()
            .map(|id| task(id, "0", "4", "2", "3"))
            .collect();
        assert_eq!(
            stepped,
            (0..3)
                .map(|index| Shard { index, count: 3 })
                .collect::<Vec<_>>()
        );
        // --array=0,2 (Slurm says step 1 of a list): 0 is shard 0 of 2, 2 helps.
        assert_eq!(task("0", "0", "2", "1", "2"), Shard { index: 0, count: 2 });
        assert_eq!(task("2", "0", "2", "1", "2"), Shard::helper(2));
        // A retry of the failed tasks 1 and 3 of 0-3: 1 is shard 0 of 2, 3 helps.
        assert_eq!(task("1", "1", "3", "1", "2"), Shard { index: 0, count: 2 });
        assert!(task("3", "1", "3", "1", "2").is_helper());
        // A helper owns nothing, in either scheduling.
        let h = Shard::helper(2);
        assert!((0..10).all(|i| !h.owns(i)));
        assert!(h.owned_of_groups(&[vec![0, 1, 2]]).is_empty());
        assert_eq!(h.to_string(), "helper of 2");
    }
}
