//! The panel in Postgres. A change is one transaction: lock the panel's
//! version row (`SELECT .. FOR UPDATE`, so changes from every server run
//! one after another and an id chosen by one is seen by the next), read the
//! panel unless this server's copy is already that version, apply the same
//! core operation the file store applies, write only the rows it changed,
//! bump the version. Ids stay unique by construction and by the primary key.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use crate::persona::store::Changed;
use crate::persona::{Persona, parse_panel};

use super::{Db, DbError};

/// The panel at one version, with each persona's position and
/// fingerprint (in panel order).
#[derive(Clone)]
struct Snapshot {
    version: i64,
    personas: Arc<Vec<Persona>>,
    positions: Arc<Vec<i64>>,
    prints: Arc<Vec<u64>>,
}

/// A persona's fingerprint: a change compares fingerprints, not personas,
/// so it needs no copy of the panel to know which rows it changed (a copy
/// of 10k personas and its drop cost more than the rest of a change). A
/// 64-bit SipHash: two different personas share one with odds of 2^-64.
fn fingerprint(persona: &Persona) -> u64 {
    // Destructured, so a new field cannot be left out.
    let Persona {
        id,
        name,
        occupation,
        location,
        tech_proficiency,
        behavioral_traits,
        age,
        extra,
    } = persona;
    let mut h = std::hash::DefaultHasher::new();
    (id, name, occupation, location, tech_proficiency).hash(&mut h);
    (behavioral_traits, age).hash(&mut h);
    if !extra.is_empty() {
        serde_json::to_string(extra)
            .expect("fields serialise")
            .hash(&mut h);
    }
    h.finish()
}

fn fingerprints(personas: &[Persona]) -> Vec<u64> {
    personas.iter().map(fingerprint).collect()
}

/// The panel table of one database, with the version this server last saw.
pub struct PgPanel {
    db: Db,
    last: Mutex<Option<Snapshot>>,
    /// This server's changes, one at a time: each puts its copy back
    /// before the next takes it (else the next would find the cache empty
    /// and read the whole panel from the database), and waiting ones hold
    /// no database connection.
    changing: tokio::sync::Mutex<()>,
}

impl PgPanel {
    pub fn new(db: Db) -> PgPanel {
        PgPanel {
            db,
            last: Mutex::new(None),
            changing: tokio::sync::Mutex::new(()),
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The panel's version now (one indexed row: about 0.1 ms on loopback).
    pub async fn version(&self) -> Result<i64, DbError> {
        self.db
            .call(sqlx::query_scalar("SELECT version FROM panel").fetch_one(self.db.pool()))
            .await
    }

    /// The panel and its version, from this server's copy when that is
    /// still current.
    pub async fn load(&self) -> Result<(i64, Vec<Persona>), DbError> {
        let snapshot = self
            .db
            .call(async {
                let mut conn = self.db.pool().acquire().await?;
                let version: i64 = sqlx::query_scalar("SELECT version FROM panel")
                    .fetch_one(&mut *conn)
                    .await?;
                match self.cached(version) {
                    Some(snapshot) => Ok(snapshot),
                    None => {
                        // Version and rows from one snapshot of the database.
                        let mut tx = self.db.pool().begin().await?;
                        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                            .execute(&mut *tx)
                            .await?;
                        let version: i64 = sqlx::query_scalar("SELECT version FROM panel")
                            .fetch_one(&mut *tx)
                            .await?;
                        let snapshot = read(&mut tx, version).await?;
                        tx.commit().await?;
                        Ok(snapshot)
                    }
                }
            })
            .await?;
        self.remember(&snapshot);
        Ok((snapshot.version, (*snapshot.personas).clone()))
    }

    /// Applies `op` to the panel as one transaction (see the module doc).
    /// `op` refusing (its `Err`) changes nothing and is the inner error.
    pub async fn change<T, E>(
        &self,
        op: impl FnOnce(&mut Vec<Persona>) -> Result<T, E>,
    ) -> Result<Result<(Changed<T>, i64), E>, DbError> {
        let outcome = self
            .db
            .call(async {
                let one_at_a_time = self.changing.lock().await;
                let mut tx = self.db.pool().begin().await?;
                let version: i64 = sqlx::query_scalar("SELECT version FROM panel FOR UPDATE")
                    .fetch_one(&mut *tx)
                    .await?;
                // Taken out of the cache, so the panel is changed in place
                // (no copy); put back only once it is what the database
                // holds. Any failure on the way leaves the cache empty.
                let before = match self.take(version) {
                    Some(snapshot) => snapshot,
                    None => read(&mut tx, version).await?,
                };
                let old = Old::of(&before);
                let mut panel = Arc::unwrap_or_clone(before.personas);
                let value = op(&mut panel);
                let prints = fingerprints(&panel);
                let plan = Plan::new(&old, &panel, &prints);
                let value = match value {
                    Ok(value) => value,
                    Err(refused) => {
                        // Operations change nothing when they refuse; keep
                        // the copy only if that held.
                        if plan.is_empty() {
                            self.remember(&Snapshot {
                                version,
                                personas: Arc::new(panel),
                                positions: Arc::new(plan.positions),
                                prints: Arc::new(prints),
                            });
                        }
                        // Dropping the transaction rolls it back.
                        return Ok(Err(refused));
                    }
                };
                let saved = !plan.is_empty();
                let version = if saved {
                    plan.write(&mut tx).await?
                } else {
                    version
                };
                tx.commit().await?;
                let after = Snapshot {
                    version,
                    personas: Arc::new(panel),
                    positions: Arc::new(plan.positions),
                    prints: Arc::new(prints),
                };
                self.remember(&after);
                drop(one_at_a_time);
                Ok(Ok((value, after, saved)))
            })
            .await?;
        Ok(outcome.map(|(value, snapshot, saved)| {
            let changed = Changed {
                value,
                panel: snapshot.personas,
                saved,
                notices: Vec::new(),
            };
            (changed, snapshot.version)
        }))
    }

    /// This server's copy if it is of `version`, taken out of the cache.
    fn take(&self, version: i64) -> Option<Snapshot> {
        let mut last = self.last.lock().expect("panel cache lock");
        if last.as_ref().is_some_and(|s| s.version == version) {
            last.take()
        } else {
            None
        }
    }

    fn cached(&self, version: i64) -> Option<Snapshot> {
        let last = self.last.lock().expect("panel cache lock");
        last.as_ref().filter(|s| s.version == version).cloned()
    }

    fn remember(&self, snapshot: &Snapshot) {
        let mut last = self.last.lock().expect("panel cache lock");
        if last.as_ref().is_none_or(|s| s.version <= snapshot.version) {
            *last = Some(snapshot.clone());
        }
    }
}

/// Reads every persona in panel order, checked by the same rules as a
/// panel file (one JSON document, parsed on the fast path).
async fn read(conn: &mut sqlx::PgConnection, version: i64) -> Result<Snapshot, sqlx::Error> {
    let (json, positions): (String, Vec<i64>) = sqlx::query_as(
        "SELECT coalesce(json_agg(data ORDER BY position, id), '[]')::text, \
                coalesce(array_agg(position ORDER BY position, id), '{}') \
         FROM personas",
    )
    .fetch_one(conn)
    .await?;
    let personas = parse_panel(&json).map_err(|e| {
        sqlx::Error::Decode(format!("the personas table is not a valid panel: {e}").into())
    })?;
    Ok(Snapshot {
        version,
        prints: Arc::new(fingerprints(&personas)),
        personas: Arc::new(personas),
        positions: Arc::new(positions),
    })
}

/// Each persona's position and fingerprint before a change, by id.
struct Old {
    by_id: HashMap<u32, (i64, u64)>,
    max_position: Option<i64>,
}

impl Old {
    fn of(snapshot: &Snapshot) -> Old {
        let by_id = snapshot
            .personas
            .iter()
            .zip(snapshot.positions.iter().zip(snapshot.prints.iter()))
            .map(|(p, (&pos, &print))| (p.id, (pos, print)))
            .collect();
        Old {
            by_id,
            max_position: snapshot.positions.iter().copied().max(),
        }
    }
}

/// The rows a change writes: what it deleted, and what it added or changed
/// (with their positions), everything else untouched.
#[derive(Debug, Default)]
struct Plan {
    deleted: Vec<i64>,
    written_ids: Vec<i64>,
    written_positions: Vec<i64>,
    written_data: Vec<String>,
    /// The position of every persona after the change, in panel order.
    positions: Vec<i64>,
}

impl Plan {
    /// `prints`: the fingerprints of `after`, in order.
    fn new(old: &Old, after: &[Persona], prints: &[u64]) -> Plan {
        let positions = positions(old, after);
        let mut plan = Plan::default();
        let mut added = 0;
        for ((persona, &position), &print) in after.iter().zip(&positions).zip(prints) {
            let was = old.by_id.get(&persona.id);
            added += usize::from(was.is_none());
            if was != Some(&(position, print)) {
                plan.written_ids.push(i64::from(persona.id));
                plan.written_positions.push(position);
                plan.written_data
                    .push(serde_json::to_string(persona).expect("personas serialise"));
            }
        }
        // Some went, unless every old persona is still there.
        if old.by_id.len() + added > after.len() {
            let kept: HashSet<u32> = after.iter().map(|p| p.id).collect();
            plan.deleted = old
                .by_id
                .keys()
                .filter(|id| !kept.contains(id))
                .map(|&id| i64::from(id))
                .collect();
            plan.deleted.sort_unstable();
        }
        plan.positions = positions;
        plan
    }

    fn is_empty(&self) -> bool {
        self.deleted.is_empty() && self.written_ids.is_empty()
    }

    /// Deletes and upserts the rows, bumps the version; the new version.
    async fn write(&self, tx: &mut sqlx::PgConnection) -> Result<i64, sqlx::Error> {
        if !self.deleted.is_empty() {
            sqlx::query("DELETE FROM personas WHERE id = ANY($1)")
                .bind(&self.deleted)
                .execute(&mut *tx)
                .await?;
        }
        if !self.written_ids.is_empty() {
            sqlx::query(
                "INSERT INTO personas (id, position, data) \
                 SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::text[]::jsonb[]) \
                 ON CONFLICT (id) DO UPDATE \
                 SET position = EXCLUDED.position, data = EXCLUDED.data, updated_at = now()",
            )
            .bind(&self.written_ids)
            .bind(&self.written_positions)
            .bind(&self.written_data)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query_scalar(
            "UPDATE panel SET version = version + 1, updated_at = now() RETURNING version",
        )
        .fetch_one(&mut *tx)
        .await
    }
}

/// Positions for `after`: personas that were there keep theirs while the
/// panel order allows it and new ones go after the last, so an add, an
/// edit or a delete rewrites only its own rows; any other reordering
/// numbers the whole panel again.
fn positions(old: &Old, after: &[Persona]) -> Vec<i64> {
    let mut out = Vec::with_capacity(after.len());
    let mut last = -1;
    let mut next_new = old.max_position.map_or(0, |m| m + 1);
    for persona in after {
        let position = match old.by_id.get(&persona.id) {
            Some(&(pos, _)) if pos > last => pos,
            None => {
                let pos = next_new.max(last + 1);
                next_new = pos + 1;
                pos
            }
            _ => return (0..after.len() as i64).collect(),
        };
        last = position;
        out.push(position);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persona::testing::panel;

    fn snapshot(personas: Vec<Persona>) -> Snapshot {
        let positions = (0..personas.len() as i64).map(|i| i * 10).collect();
        Snapshot {
            version: 1,
            prints: Arc::new(fingerprints(&personas)),
            personas: Arc::new(personas),
            positions: Arc::new(positions),
        }
    }

    fn plan_of(before: &Snapshot, after: &[Persona]) -> Plan {
        Plan::new(&Old::of(before), after, &fingerprints(after))
    }

    #[test]
    fn an_edit_writes_one_row_and_a_delete_none() {
        let before = snapshot(panel(5));
        let mut after = (*before.personas).clone();
        after[2].occupation = "Pilot".into();
        let plan = plan_of(&before, &after);
        assert_eq!(plan.written_ids, [i64::from(after[2].id)]);
        assert_eq!(plan.written_positions, [20]);
        assert!(plan.deleted.is_empty());

        let mut after = (*before.personas).clone();
        let gone = after.remove(1);
        let plan = plan_of(&before, &after);
        assert!(plan.written_ids.is_empty(), "{plan:?}");
        assert_eq!(plan.deleted, [i64::from(gone.id)]);
        assert_eq!(plan.positions, [0, 20, 30, 40]);
    }

    #[test]
    fn added_personas_go_after_the_last() {
        let before = snapshot(panel(3));
        let mut after = (*before.personas).clone();
        let mut new = after[0].clone();
        new.id = 99;
        after.push(new.clone());
        new.id = 100;
        after.push(new);
        let plan = plan_of(&before, &after);
        assert_eq!(plan.written_ids, [99, 100]);
        assert_eq!(plan.written_positions, [21, 22]);
    }

    #[test]
    fn a_reordered_panel_is_numbered_again() {
        let before = snapshot(panel(3));
        let mut after = (*before.personas).clone();
        after.swap(0, 2);
        let plan = plan_of(&before, &after);
        assert_eq!(plan.positions, [0, 1, 2]);
        assert_eq!(plan.written_ids.len(), 3);
        // A new persona in the middle, too.
        let mut after = (*before.personas).clone();
        let mut new = after[0].clone();
        new.id = 50;
        after.insert(1, new);
        let plan = plan_of(&before, &after);
        assert_eq!(plan.positions, [0, 1, 2, 3]);
    }
}

#[cfg(test)]
mod fingerprint_tests {
    use super::*;
    use crate::persona::testing::panel;

    #[test]
    fn every_field_counts() {
        let base = panel(1).remove(0);
        let print = fingerprint(&base);
        let mut changes: Vec<Persona> = Vec::new();
        for change in 0..7 {
            let mut p = base.clone();
            match change {
                0 => p.id += 1,
                1 => p.name.push('x'),
                2 => p.occupation.push('x'),
                3 => p.location.push('x'),
                4 => p.behavioral_traits.push("x".into()),
                5 => p.age = Some(p.age.unwrap_or(0) + 1),
                _ => {
                    p.extra.insert("x".into(), serde_json::json!(1));
                }
            }
            changes.push(p);
        }
        let mut p = base.clone();
        p.tech_proficiency = if p.tech_proficiency == crate::persona::TechProficiency::Low {
            crate::persona::TechProficiency::High
        } else {
            crate::persona::TechProficiency::Low
        };
        changes.push(p);
        for p in &changes {
            assert_ne!(fingerprint(p), print, "{p:?}");
        }
        assert_eq!(fingerprint(&base.clone()), print);
    }
}
