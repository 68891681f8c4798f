//! Kafka brokers for the tests: librdkafka's mock cluster (a real
//! Kafka-protocol broker on loopback, in this process; consumers in other
//! processes reach it like any broker) and helpers that work against any
//! broker by its bootstrap address.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::util::Timeout;

/// A running mock cluster, alive as long as this value.
pub struct MockKafka {
    producer: FutureProducer,
    bootstrap: String,
}

impl MockKafka {
    /// One broker with `topic` of `partitions` partitions, consumer groups
    /// joining without the usual initial delay.
    pub fn start(topic: &str, partitions: i32) -> MockKafka {
        let producer: FutureProducer = ClientConfig::new()
            .set("test.mock.num.brokers", "1")
            .set("linger.ms", "1")
            .create()
            .expect("mock cluster starts");
        let bootstrap = {
            let cluster = producer
                .client()
                .mock_cluster()
                .expect("producer owns a mock cluster");
            cluster
                .create_topic(topic, partitions, 1)
                .expect("topic created");
            cluster.bootstrap_servers()
        };
        no_initial_rebalance_delay(&producer);
        MockKafka {
            producer,
            bootstrap,
        }
    }

    /// The brokers' address list.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// Produces `records` round-robin over the partitions.
    pub async fn produce(&self, topic: &str, partitions: i32, records: &[Vec<u8>]) {
        produce(&self.producer, topic, partitions, records).await;
    }

    /// The group's committed offset per partition.
    pub fn committed(&self, group: &str, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
        committed(&self.bootstrap, group, topic, partitions)
    }

    /// The end offset (high watermark) per partition.
    pub fn end_offsets(&self, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
        end_offsets(&self.bootstrap, topic, partitions)
    }
}

/// A producer for the brokers at `bootstrap`.
pub fn producer(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .create()
        .expect("producer")
}

/// Produces `records` round-robin over the partitions, each with a routing
/// header, and waits for every delivery.
pub async fn produce(producer: &FutureProducer, topic: &str, partitions: i32, records: &[Vec<u8>]) {
    let mut deliveries = Vec::with_capacity(records.len());
    for (i, payload) in records.iter().enumerate() {
        let partition = i32::try_from(i).expect("few records") % partitions;
        let headers = rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
            key: "region",
            value: Some("eu-de".as_bytes()),
        });
        let record: FutureRecord<'_, (), [u8]> = FutureRecord::to(topic)
            .payload(&payload[..])
            .partition(partition)
            .headers(headers);
        deliveries.push(keytrail::generate::enqueue(producer, record).expect("record enqueued"));
    }
    for delivery in deliveries {
        delivery
            .await
            .expect("delivery future completes")
            .map_err(|(e, _)| e)
            .expect("record delivered");
    }
}

/// The group's committed offset per partition (absent partitions have no
/// commit).
pub fn committed(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .expect("consumer for offsets");
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition(topic, p);
    }
    let committed = consumer
        .committed_offsets(list, Timeout::After(Duration::from_secs(10)))
        .expect("committed offsets");
    committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect()
}

/// The end offset (high watermark) per partition.
pub fn end_offsets(bootstrap: &str, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("consumer for watermarks");
    (0..partitions)
        .map(|p| {
            let (_, high) = consumer
                .fetch_watermarks(topic, p, Timeout::After(Duration::from_secs(10)))
                .expect("watermarks");
            (p, high)
        })
        .collect()
}

/// Lowers the mock cluster's consumer-group initial rebalance delay (3 s by
/// default) to zero, so tests do not wait for every group join. The safe
/// rdkafka API has no call for it, hence this one FFI call.
#[allow(unsafe_code)]
fn no_initial_rebalance_delay(producer: &FutureProducer) {
    let client = producer.client().native_ptr();
    // SAFETY: `client` is the live handle of `producer`, which owns the mock
    // cluster; the cluster pointer is valid while the producer lives, and the
    // call only stores an integer in the cluster's settings.
    unsafe {
        let cluster = rdkafka::bindings::rd_kafka_handle_mock_cluster(client);
        assert!(!cluster.is_null(), "producer has a mock cluster");
        rdkafka::bindings::rd_kafka_mock_group_initial_rebalance_delay_ms(cluster, 0);
    }
}
