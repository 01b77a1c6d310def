//! The métier picker: the built-in reference list of common territorial métiers with
//! their ROME codes (`domain::metiers`), searched accent-insensitively, with the
//! reference to paste into a posting or a profile.

use axum::Json;
use axum::extract::State;
use passerelle_protocol::vocab::Filiere;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::Caller;
use crate::domain::matching::filiere_fr;
use crate::domain::metiers::{self, METIERS, Metier};
use crate::http::error::{AppError, AppQuery, FieldError, Problem};
use crate::state::AppState;
use crate::store::Role;

/// A métier of the reference list.
#[derive(Debug, Serialize, ToSchema)]
pub struct MetierView {
    /// Usual label.
    pub label: String,
    /// ROME 4.0 fiche code.
    pub rome: String,
    /// Label of the ROME fiche.
    pub rome_label: String,
    /// Filière (wire value).
    pub filiere: String,
    /// Filière, in French.
    pub filiere_label: String,
    /// Usual catégories.
    pub categories: Vec<String>,
    /// Typical cadres d'emplois.
    pub cadres_emplois: Vec<String>,
    /// The reference for a posting's `metiers` or a profile's `metiersCurrent`.
    #[schema(value_type = Object)]
    pub metier_ref: Value,
}

fn view(m: &Metier) -> MetierView {
    MetierView {
        label: m.label.to_owned(),
        rome: m.rome.to_owned(),
        rome_label: m.rome_label.to_owned(),
        filiere: serde_json::to_value(m.filiere)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        filiere_label: filiere_fr(m.filiere).to_owned(),
        categories: m
            .categories
            .iter()
            .filter_map(|c| serde_json::to_value(c).ok()?.as_str().map(str::to_owned))
            .collect(),
        cadres_emplois: m.cadres_emplois.iter().map(|s| (*s).to_owned()).collect(),
        metier_ref: serde_json::to_value(m.metier_ref()).unwrap_or_default(),
    }
}

/// What to look for.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MetierQuery {
    /// Words of the label (accents and case ignored), or the start of a ROME code.
    pub q: Option<String>,
    /// Only this filière (`technique`, `administrative`…).
    pub filiere: Option<String>,
    /// Only this ROME fiche (e.g. `K1404`).
    pub rome: Option<String>,
    /// At most this many (default 20, at most 200).
    pub limit: Option<usize>,
}

/// # `GET /api/v1/metiers`
/// Searches the reference list of territorial métiers (for pickers), best match first;
/// without `q`, every métier of the filière or ROME fiche asked, or the whole list.
#[utoipa::path(get, path = "/api/v1/metiers", tag = "postings", params(MetierQuery),
    responses((status = 200, body = Vec<MetierView>), (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn list_metiers(
    State(_state): State<AppState>,
    Caller(p): Caller,
    AppQuery(q): AppQuery<MetierQuery>,
) -> Result<Json<Vec<MetierView>>, AppError> {
    p.require(Role::Lecteur)?;
    let limit = q.limit.unwrap_or(20).clamp(1, 200);
    let filiere = match q.filiere.as_deref() {
        None => None,
        Some(f) => Some(
            serde_json::from_value::<Filiere>(Value::String(f.to_owned())).map_err(|_| {
                AppError::Validation {
                    detail: "filière inconnue".into(),
                    errors: vec![FieldError {
                        field: "filiere".into(),
                        message: format!(
                            "{f:?} n'est pas une filière : administrative, technique, culturelle, sportive, animation, sociale, medico_sociale, medico_technique, police_municipale, sapeurs_pompiers"
                        ),
                    }],
                }
            })?,
        ),
    };
    let found: Vec<&Metier> = match q.q.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(text) => metiers::search(text, METIERS.len()),
        None => METIERS.iter().collect(),
    };
    Ok(Json(
        found
            .into_iter()
            .filter(|m| filiere.is_none_or(|f| m.filiere == f))
            .filter(|m| {
                q.rome
                    .as_deref()
                    .is_none_or(|r| m.rome.eq_ignore_ascii_case(r.trim()))
            })
            .take(limit)
            .map(view)
            .collect(),
    ))
}
