//! The real published vendor events in `../shared/samples/real/*.jsonl`
//! (quirks included) must all normalize, the other IBM services as
//! `ibm_cloud`. They are not part of the repository: on a checkout without
//! `../shared` the test says so and checks nothing else.

use std::path::PathBuf;

use keytrail_core::{RecordMeta, Source, Transform};
use keytrail_transform_classify::Classifier;
use keytrail_transform_enrich::Enricher;
use keytrail_transform_normalize::Normalizer;

fn samples_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/samples/real");
    dir.is_dir().then_some(dir)
}

#[test]
fn every_real_jsonl_sample_normalizes() {
    let Some(dir) = samples_dir() else {
        eprintln!("note: ../shared/samples/real is absent; real samples not checked");
        return;
    };
    let (normalizer, enricher, classifier) =
        (Normalizer::default(), Enricher::new(), Classifier::new());
    let mut files = std::fs::read_dir(&dir)
        .expect("samples dir is readable")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect::<Vec<_>>();
    files.sort();
    assert!(!files.is_empty(), "no .jsonl samples in {}", dir.display());
    let mut failures = Vec::new();
    let mut count = 0;
    for file in &files {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_owned();
        let text = std::fs::read(file).expect("sample is readable");
        for (n, line) in text.split(|b| *b == b'\n').enumerate() {
            if line.trim_ascii().is_empty() {
                continue;
            }
            count += 1;
            match normalizer.normalize_line(line, &RecordMeta::default()) {
                Err(rejection) => failures.push(format!("{name}:{}: {rejection}", n + 1)),
                Ok(mut event) => {
                    enricher.apply(&mut event);
                    classifier.apply(&mut event);
                    if name.contains("other-services") && event.source != Source::IbmCloud {
                        failures.push(format!(
                            "{name}:{}: source {:?}, want ibm_cloud",
                            n + 1,
                            event.source
                        ));
                    }
                    if name.starts_with("securosys") && event.source != Source::SecurosysKm {
                        failures.push(format!("{name}:{}: source {:?}", n + 1, event.source));
                    }
                    if name == "ibm-cadf-samples.jsonl"
                        && !matches!(event.source, Source::IbmHpcs | Source::IbmKeyProtect)
                    {
                        failures.push(format!("{name}:{}: source {:?}", n + 1, event.source));
                    }
                    serde_json::to_string(&event).expect("serializes");
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} real events failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{count} real events from {} files normalized", files.len());
}
