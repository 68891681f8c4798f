//! The configuration file: TOML, closed (unknown keys are refused), with
//! `${ENV_VAR}` interpolation, validated as a whole before anything starts.

use std::path::Path;

use anyhow::Context as _;
use keytrail_sink_file::FileSinkConfig;
use keytrail_sink_grpc::GrpcConfig;
use keytrail_sink_prometheus::PrometheusConfig;
use keytrail_source_kafka::{DeadLetterConfig, KafkaConfig};
use keytrail_transform_classify::ClassifyConfig;
use keytrail_transform_enrich::EnrichConfig;
use keytrail_transform_normalize::NormalizeConfig;
use serde::Deserialize;

/// The whole configuration.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[kafka]`: the consumer group (required by `run`).
    pub kafka: Option<KafkaConfig>,
    /// `[dead_letter]`: where bad records go (required by `run`).
    pub dead_letter: Option<DeadLetterConfig>,
    /// `[pipeline]`: channel sizes and transform threads.
    pub pipeline: PipelineConfig,
    /// `[file]`: write normalized events to a file.
    pub file: Option<FileSinkConfig>,
    /// `[grpc]`: forward events to the SIEM.
    pub grpc: Option<GrpcConfig>,
    /// `[prometheus]`: serve `/metrics`, `/health`, `/ready` and count
    /// audit events.
    pub prometheus: Option<PrometheusConfig>,
    /// `[normalize]`: input limits.
    pub normalize: NormalizeConfig,
    /// `[enrich]`: extra catalog rows and operator lookups.
    pub enrich: EnrichConfig,
    /// `[classify]`: severity overrides and extra actionable events.
    pub classify: ClassifyConfig,
}

/// `[pipeline]`: the bounded channels between stages, and how many batches
/// the transforms work on at once.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Capacity of each channel between stages, in batches. A full channel
    /// makes the stage before it wait, and the source pause its partitions.
    pub channel_capacity_batches: usize,
    /// Longest shutdown waits for the sinks to deliver what they hold, in
    /// milliseconds.
    pub shutdown_timeout_ms: u64,
    /// Batches normalized, enriched and classified at once, each on its own
    /// thread; they leave the stage in the order they came. Unset: one per
    /// CPU the process may use.
    pub transform_concurrency: Option<usize>,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            channel_capacity_batches: 4,
            shutdown_timeout_ms: 30_000,
            transform_concurrency: None,
        }
    }
}

/// Most batches the transforms may work on at once.
const MAX_TRANSFORM_CONCURRENCY: usize = 256;

impl PipelineConfig {
    /// `transform_concurrency`, or the CPUs available to the process
    /// (its affinity mask and cgroup quota count), at most
    /// [`MAX_TRANSFORM_CONCURRENCY`].
    pub fn transform_concurrency(&self) -> usize {
        self.transform_concurrency.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(1, usize::from)
                .min(MAX_TRANSFORM_CONCURRENCY)
        })
    }
}

impl Config {
    /// Checks what `run` needs beyond the transforms: a source, a dead-letter
    /// output and at least one sink, each valid.
    pub fn validate_for_run(&self) -> anyhow::Result<()> {
        let kafka = self
            .kafka
            .as_ref()
            .context("missing [kafka] section (bootstrap_servers, topics, group_id)")?;
        kafka.validate()?;
        let dead_letter = self
            .dead_letter
            .as_ref()
            .context("missing [dead_letter] section (topic or path)")?;
        dead_letter.validate()?;
        anyhow::ensure!(
            self.file.is_some() || self.grpc.is_some() || self.prometheus.is_some(),
            "no sink configured: add a [grpc], [file] or [prometheus] section"
        );
        if let Some(grpc) = &self.grpc {
            grpc.build()?;
        }
        if let Some(prometheus) = &self.prometheus {
            prometheus.build()?;
        }
        anyhow::ensure!(
            (1..=1024).contains(&self.pipeline.channel_capacity_batches),
            "pipeline.channel_capacity_batches must be between 1 and 1024"
        );
        if let Some(concurrency) = self.pipeline.transform_concurrency {
            anyhow::ensure!(
                (1..=MAX_TRANSFORM_CONCURRENCY).contains(&concurrency),
                "pipeline.transform_concurrency must be between 1 and {MAX_TRANSFORM_CONCURRENCY}, got {concurrency}"
            );
        }
        Ok(())
    }

    /// Reads, interpolates and parses a configuration file, then builds every
    /// stage once to validate it.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config {}", path.display()))?;
        let text = interpolate(&text).with_context(|| format!("in config {}", path.display()))?;
        let config: Config =
            toml::from_str(&text).with_context(|| format!("invalid config {}", path.display()))?;
        crate::transforms::Transforms::build(&config)
            .with_context(|| format!("invalid config {}", path.display()))?;
        Ok(config)
    }
}

/// Replaces `${NAME}` with the environment variable NAME; `$${` is a literal
/// `${`. Whole-line comments are left as written. An unset variable is an
/// error naming it (never its value).
pub fn interpolate(text: &str) -> anyhow::Result<String> {
    interpolate_with(text, |name| std::env::var(name).ok())
}

/// [`interpolate`] with a given variable lookup.
pub fn interpolate_with(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<String> {
    let mut out = String::with_capacity(text.len());
    for (n, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
        } else {
            let line =
                interpolate_line(line, &lookup).with_context(|| format!("line {}", n + 1))?;
            out.push_str(&line);
        }
    }
    Ok(out)
}

fn interpolate_line(
    text: &str,
    lookup: &impl Fn(&str) -> Option<String>,
) -> anyhow::Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        if rest[..at].ends_with('$') {
            out.push_str(&rest[..at - 1]);
            out.push_str("${");
            rest = &rest[at + 2..];
            continue;
        }
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let end = after
            .find('}')
            .context("unterminated ${ in config (write $${ for a literal)")?;
        let name = &after[..end];
        anyhow::ensure!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "invalid environment variable name {name:?} in config"
        );
        let value =
            lookup(name).with_context(|| format!("environment variable {name} is not set"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<String> {
        (name == "TOKEN").then(|| "s3cret".to_owned())
    }

    #[test]
    fn interpolates_and_escapes() {
        assert_eq!(
            interpolate_with("a=${TOKEN} b=$${LITERAL}", lookup).expect("interpolates"),
            "a=s3cret b=${LITERAL}"
        );
        let err = interpolate_with("x=${UNSET_VAR}", lookup).expect_err("unset fails");
        assert!(format!("{err:#}").contains("UNSET_VAR"));
        assert!(interpolate_with("x=${oops", lookup).is_err());
        assert!(interpolate_with("x=${a b}", lookup).is_err());
        assert_eq!(
            interpolate_with("# see ${NAME}\nx = \"${TOKEN}\"\n", lookup).expect("comments kept"),
            "# see ${NAME}\nx = \"s3cret\"\n"
        );
    }

    #[test]
    fn unset_variable_errors_never_show_values() {
        let err = interpolate_with("a=${TOKEN} b=${NOPE}", lookup).expect_err("fails");
        assert!(!format!("{err:#}").contains("s3cret"));
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let err = toml::from_str::<Config>("[normalize]\nmax_depht = 3\n").expect_err("refused");
        assert!(err.to_string().contains("max_depht"), "{err}");
        let err = toml::from_str::<Config>("[nomalize]\n").expect_err("refused");
        assert!(err.to_string().contains("nomalize"), "{err}");
    }

    #[test]
    fn transform_concurrency_defaults_to_the_cpus_and_is_bounded() {
        const RUN: &str = "[kafka]\nbootstrap_servers = \"localhost:9092\"\ntopics = [\"audit\"]\n\
            group_id = \"g\"\n[dead_letter]\npath = \"/tmp/dead.jsonl\"\n\
            [file]\npath = \"/tmp/events.jsonl\"\n";
        let config: Config = toml::from_str(RUN).expect("parses");
        config.validate_for_run().expect("valid");
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(config.pipeline.transform_concurrency(), cpus.min(256));

        let set = |n: usize| {
            let config: Config =
                toml::from_str(&format!("{RUN}[pipeline]\ntransform_concurrency = {n}\n"))
                    .expect("parses");
            (
                config.validate_for_run(),
                config.pipeline.transform_concurrency(),
            )
        };
        let (valid, concurrency) = set(3);
        valid.expect("3 is valid");
        assert_eq!(concurrency, 3);
        for refused in [0, 257] {
            let err = set(refused).0.expect_err("out of range");
            assert_eq!(
                format!("{err:#}"),
                format!("pipeline.transform_concurrency must be between 1 and 256, got {refused}")
            );
        }
    }
}
