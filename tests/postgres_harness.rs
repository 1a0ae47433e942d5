//! The throwaway PostgreSQL of `support::postgres` works: a cluster
//! starts, hands out separate databases, answers queries, and comes back
//! with its data after a stop. Skipped with a message when PostgreSQL's
//! server binaries are missing, a failure in CI.

mod support;

use std::time::Instant;

use support::postgres::PgCluster;

#[test]
fn cluster_starts_hands_out_databases_and_survives_a_restart() {
    let started = Instant::now();
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    eprintln!(
        "PgCluster::start took {:?} (port {})",
        started.elapsed(),
        cluster.port()
    );

    let made = Instant::now();
    let first = cluster.fresh_database();
    eprintln!("PgCluster::fresh_database took {:?}", made.elapsed());
    let second = cluster.fresh_database();
    assert_ne!(first, second, "each call makes a new database");
    let prefix = format!("postgres://postgres@127.0.0.1:{}/", cluster.port());
    assert!(first.starts_with(&prefix), "{first}");

    assert_eq!(cluster.psql(&first, "select 1").trim(), "1");
    // Both exist and are separate: a table made in one is not in the other.
    cluster.psql(
        &first,
        "create table marker (n int); insert into marker values (7)",
    );
    let elsewhere = cluster.psql(
        &second,
        "select count(*) from pg_tables where tablename = 'marker'",
    );
    assert_eq!(elsewhere.trim(), "0");

    cluster.stop();
    let down = cluster
        .try_psql(&first, "select 1")
        .expect_err("a stopped server does not answer");
    assert!(down.contains("psql"), "{down}");

    let again = Instant::now();
    cluster.start_again();
    eprintln!("PgCluster::start_again took {:?}", again.elapsed());
    assert_eq!(
        cluster.psql(&first, "select n from marker").trim(),
        "7",
        "the data survived"
    );
    assert_eq!(cluster.psql(&second, "select 1").trim(), "1");
}

#[test]
fn the_shared_cluster_is_started_once() {
    let started = Instant::now();
    let Some(shared) = PgCluster::shared() else {
        return;
    };
    eprintln!("PgCluster::shared took {:?}", started.elapsed());
    let again = PgCluster::shared().expect("started already");
    assert!(std::ptr::eq(shared, again), "one cluster per test binary");
    let url = shared.fresh_database();
    assert_eq!(
        shared.psql(&url, "select current_database()").trim(),
        url.rsplit('/').next().unwrap()
    );
}

#[test]
fn fresh_databases_can_be_made_at_once() {
    let Some(shared) = PgCluster::shared() else {
        return;
    };
    let urls: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| shared.fresh_database()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let unique: std::collections::HashSet<_> = urls.iter().collect();
    assert_eq!(unique.len(), urls.len(), "{urls:?}");
    for url in &urls {
        assert_eq!(shared.psql(url, "select 1").trim(), "1");
    }
}
