//! Cost of the object-proof path on a realistic ~2 KB posting activity (French text, a
//! `Create` of a job posting): serde_json parse, strict parse, JCS, proof sign, proof
//! verify, and a bare `verify_strict` of a 256-byte message for comparison.
//!
//! Run: `cargo bench -p passerelle-protocol --bench proof`. At the end a table gives the
//! operations per second (from criterion's median estimates) and the ratios.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{BatchSize, Criterion};
use passerelle_protocol::canonical::{ParseLimits, canonicalize, parse_strict};
use passerelle_protocol::keys::SigningKey;
use passerelle_protocol::proof::{self, ProofOptions};
use serde_json::{Value, json};

const GROUP: &str = "proof";

fn posting() -> Value {
    json!({
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/passerelle/v1"],
        "id": "https://rh.ville-exemple.example/activities/0192f0c4-7d8e-7a1b-9c3d-1e2f3a4b5c6d",
        "type": "Create",
        "actor": "https://rh.ville-exemple.example/actor",
        "published": "2026-11-23T09:30:00Z",
        "to": ["https://rh.ville-exemple.example/followers"],
        "cc": ["https://rh.departement-exemple.example/actor", "https://rh.cdg-exemple.example/actor"],
        "object": {
            "id": "https://rh.ville-exemple.example/postings/2026-0042",
            "type": "Posting",
            "attributedTo": "https://rh.ville-exemple.example/actor",
            "name": "Gestionnaire ressources humaines — carrière et paie (h/f)",
            "summary": "La Ville recrute, par voie de mutation, de détachement ou de mise à disposition, un(e) gestionnaire carrière-paie au sein de la direction des ressources humaines.",
            "content": "Au sein d’un service de douze agents, vous assurez la gestion administrative des carrières (avancements d’échelon et de grade, promotions internes, positions statutaires) et l’élaboration de la paie d’un portefeuille d’environ 180 agents titulaires et contractuels. Connaissance du statut de la fonction publique territoriale exigée ; maîtrise d’un logiciel de paie appréciée. Télétravail possible deux jours par semaine, horaires variables, restaurant administratif, CNAS.",
            "cadreEmplois": "Rédacteurs territoriaux",
            "categorie": "B",
            "filiere": "administrative",
            "gradeMin": "Rédacteur",
            "gradeMax": "Rédacteur principal de 1re classe",
            "quotite": 1.0,
            "remuneration": {"indiceMajoreMin": 356, "indiceMajoreMax": 503, "rifseepMensuel": 310.5, "devise": "EUR"},
            "lieu": {"type": "Place", "name": "Hôtel de ville, 1 place de la Mairie, 42000 Saint-Étienne", "latitude": 45.439695, "longitude": 4.387178, "codeCommune": "42218"},
            "modalites": ["mutation", "detachement", "mise-a-disposition"],
            "dateLimite": "2027-01-15",
            "priseDePoste": "2027-03-01",
            "contact": "https://rh.ville-exemple.example/actor#contact",
            "tag": [{"type": "Hashtag", "name": "#RH"}, {"type": "Hashtag", "name": "#Paie"}]
        }
    })
}

fn benches(c: &mut Criterion) {
    let key = SigningKey::from_seed(&[0x42; 32]);
    let vm = "https://rh.ville-exemple.example/actor#key-1".to_owned();
    let options = ProofOptions::new(&vm, time::macros::datetime!(2026-11-23 09:30 UTC));
    let doc = posting();
    let signed = proof::sign(doc.clone(), &key, &options).unwrap();
    let signed_bytes = serde_json::to_vec(&signed).unwrap();
    let keys = vec![(vm, key.public_key())];
    let msg = [0x5a_u8; 256];
    let sig = key.sign(&msg);
    let public = key.public_key();
    let limits = ParseLimits::default();
    eprintln!(
        "sample: signed activity {} bytes compact, JCS of the unsigned document {} bytes",
        signed_bytes.len(),
        canonicalize(&doc).unwrap().len()
    );

    let mut g = c.benchmark_group(GROUP);
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    g.bench_function("serde_json_parse", |b| {
        b.iter(|| serde_json::from_slice::<Value>(black_box(&signed_bytes)).unwrap())
    });
    g.bench_function("parse_strict", |b| {
        b.iter(|| parse_strict(black_box(&signed_bytes), &limits).unwrap())
    });
    g.bench_function("jcs_canonicalize", |b| {
        b.iter(|| canonicalize(black_box(&signed)).unwrap())
    });
    g.bench_function("proof_sign", |b| {
        b.iter_batched(
            || doc.clone(),
            |d| proof::sign(d, &key, &options).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("proof_verify", |b| {
        b.iter_batched(
            || signed.clone(),
            |d| proof::verify(d, &keys).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("parse_strict_and_proof_verify", |b| {
        b.iter(|| {
            proof::verify(
                parse_strict(black_box(&signed_bytes), &limits).unwrap(),
                &keys,
            )
            .unwrap()
        })
    });
    g.bench_function("verify_strict_256B", |b| {
        b.iter(|| public.verify(black_box(&msg), black_box(&sig)).unwrap())
    });
    g.finish();
}

/// Median time per operation (ns) from criterion's estimates, if it ran.
fn median_ns(bench: &str) -> Option<f64> {
    let exe = std::env::current_exe().ok()?;
    // target/<profile>/deps/proof-<hash> → target/criterion
    let target = exe.parent()?.parent()?.parent()?;
    let home = std::env::var_os("CRITERION_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| target.join("criterion"));
    let path = home.join(GROUP).join(bench).join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}

fn print_table() {
    let names = [
        "serde_json_parse",
        "parse_strict",
        "jcs_canonicalize",
        "proof_sign",
        "proof_verify",
        "parse_strict_and_proof_verify",
        "verify_strict_256B",
    ];
    println!(
        "\n{:<32} {:>12} {:>12}",
        "operation (~2 KB posting)", "µs/op", "ops/s"
    );
    for name in names {
        match median_ns(name) {
            Some(ns) => println!("{name:<32} {:>12.2} {:>12.0}", ns / 1e3, 1e9 / ns),
            None => println!("{name:<32} {:>12} {:>12}", "n/a", "n/a"),
        }
    }
    let ratio = |a: &str, b: &str| match (median_ns(a), median_ns(b)) {
        (Some(x), Some(y)) => format!("{:.2}", x / y),
        _ => "n/a".to_owned(),
    };
    println!(
        "time ratio proof_verify ÷ verify_strict_256B: {}",
        ratio("proof_verify", "verify_strict_256B")
    );
    println!(
        "time ratio jcs_canonicalize ÷ serde_json_parse: {}",
        ratio("jcs_canonicalize", "serde_json_parse")
    );
    println!(
        "time ratio parse_strict ÷ serde_json_parse: {}",
        ratio("parse_strict", "serde_json_parse")
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
    print_table();
}
