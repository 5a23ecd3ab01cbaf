//! Topic administration: creating the topics a job or a test needs.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use sluice_runtime::Result;

use super::{user_error, KafkaError, KafkaProperties};

/// Creates `topic` with `partitions` partitions and topic `config` entries (for example
/// `("retention.ms", "-1")`); an existing topic is left as it is.
///
/// # Errors
/// When the brokers cannot be reached or refuse the topic.
pub fn create_topic(
    properties: &KafkaProperties,
    topic: &str,
    partitions: i32,
    config: &[(&str, &str)],
) -> Result<()> {
    let bootstrap = properties.bootstrap().to_string();
    let admin: AdminClient<DefaultClientContext> = properties
        .client_config(&[])
        .create()
        .map_err(|e| KafkaError::new(&bootstrap, "creating the admin client", e))?;
    let mut new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    for (k, v) in config {
        new_topic = new_topic.set(k, v);
    }
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| user_error(format!("cannot start the admin client's runtime: {e}")))?;
    let results = runtime
        .block_on(admin.create_topics([&new_topic], &options))
        .map_err(|e| KafkaError::new(&bootstrap, format!("creating topic `{topic}`"), e))?;
    for result in results {
        match result {
            Ok(_) => {}
            Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(user_error(format!(
                    "Kafka ({bootstrap}): cannot create topic `{name}`: {code}"
                )))
            }
        }
    }
    Ok(())
}
