//! The pipeline against `tansu`, a Kafka-compatible broker in its own
//! process: records produced to it all arrive, a SIGKILLed keytrail replays
//! from its last commit, and the group's offsets end at the log end.
//!
//! `make test` installs tansu (`scripts/install-tansu.sh`) and sets
//! `KEYTRAIL_REQUIRE_TANSU=1`, so a missing broker fails the run there;
//! elsewhere the test says it skipped.

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;

use crate::support::kafka::{committed, produce, producer};
use crate::support::process::{Proc, free_port, keytrail_run, wait_listening};
use crate::support::{self, event_ids, pipeline_config, wait_for};

const TIMEOUT: Duration = Duration::from_secs(90);

fn tansu() -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("tansu"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("KEYTRAIL_REQUIRE_TANSU").is_none(),
            "tansu is required (KEYTRAIL_REQUIRE_TANSU is set) but not on PATH: run scripts/install-tansu.sh"
        );
        eprintln!("note: tansu not on PATH; out-of-process broker test skipped");
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tansu_broker_delivers_everything_across_a_sigkill() {
    let Some(tansu) = tansu() else { return };
    let listen = free_port();
    let url = format!("tcp://{listen}");
    let _broker = Proc(
        Command::new(tansu)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tansu starts"),
    );
    wait_listening(listen, TIMEOUT).await;
    let bootstrap = listen.to_string();
    let (topic, partitions, group) = ("audit", 2, "tansu-group");

    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("admin client");
    let created = admin
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .expect("create topics call");
    for result in created {
        result.expect("topic created");
    }

    let records = support::records(31, 2000, 1.0);
    let (expected, _) = support::valid_ids(&records);
    produce(&producer(&bootstrap), topic, partitions, &records).await;

    let dir = tempfile::tempdir().expect("temp dir");
    let (config, events, _dead) = pipeline_config(&bootstrap, topic, group, dir.path(), "");
    let config_path = dir.path().join("keytrail.toml");
    std::fs::write(&config_path, config).expect("config written");
    let run = || keytrail_run(&config_path);

    let first = run();
    let unique = || event_ids(&events).into_iter().collect::<HashSet<_>>();
    wait_for("some events before the kill", TIMEOUT, || {
        unique().len() >= expected.len() / 4
    })
    .await;
    drop(first);
    let mut second = run();
    wait_for("every event after the restart", TIMEOUT, || {
        unique().len() >= expected.len()
    })
    .await;
    // This tansu build answers watermark queries with 1; the log end is
    // known anyway: records were produced round-robin.
    let per_partition = i64::try_from(records.len()).expect("few") / i64::from(partitions);
    let end: std::collections::BTreeMap<i32, i64> =
        (0..partitions).map(|p| (p, per_partition)).collect();
    // Every event may already be out before the group hands the killed
    // instance's partitions to the new one (after its session times out);
    // the new instance must then replay them from the last commit and
    // commit to the end. The commits are the proof, so wait for them.
    wait_for("commits to reach the log end", TIMEOUT, || {
        committed(&bootstrap, group, topic, partitions) == end
    })
    .await;
    second.terminate();
    let exit = tokio::task::spawn_blocking(move || second.0.wait().expect("exit status"));
    let exit = tokio::time::timeout(TIMEOUT, exit)
        .await
        .expect("exits in time")
        .expect("waiter");
    assert!(exit.success(), "graceful shutdown exits 0, got {exit}");

    assert_eq!(unique(), expected, "every valid record arrived, by id");
    eprintln!(
        "tansu: {} events, {} duplicates after SIGKILL",
        expected.len(),
        event_ids(&events).len() - expected.len()
    );
    assert_eq!(
        committed(&bootstrap, group, topic, partitions),
        end,
        "committed to the log end"
    );
}
