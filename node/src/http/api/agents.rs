//! Local agents (personal data; stays on this node).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{AppJson, Caller};
use crate::http::error::{AppError, AppPath, FieldError, Problem};
use crate::state::AppState;
use crate::store::{Agent, AgentFields, Role};

/// An agent to create or replace.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentBody {
    /// Name as shown to HR.
    pub display_name: String,
    /// Work e-mail.
    #[serde(default)]
    pub email: Option<String>,
    /// Other fields, an object. Checked when present: `statut` (fonctionnaire_titulaire,
    /// contractuel_cdi…: decides MAD eligibility), `categorie` (A, B, C), `filiere`,
    /// `cadre_emplois`, `grade`, `echelon`, `temps_travail`, `service`. They stay on this
    /// node: only a MAD the agent agreed to discloses name, grade and échelon to the host.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub data: Option<serde_json::Value>,
}

/// An agent.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentView {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub display_name: String,
    /// Work e-mail.
    pub email: Option<String>,
    /// Other fields.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// Creation.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

impl From<Agent> for AgentView {
    fn from(a: Agent) -> Self {
        Self {
            id: a.id,
            display_name: a.display_name,
            email: a.email,
            data: a.data,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

fn check(body: AgentBody) -> Result<AgentFields, AppError> {
    let mut errors = Vec::new();
    if body.display_name.trim().is_empty() {
        errors.push(FieldError {
            field: "display_name".into(),
            message: "le nom de l'agent est obligatoire".into(),
        });
    }
    if let Some(email) = &body.email {
        let ok = email.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty() && d.contains('.') && !email.contains(char::is_whitespace)
        });
        if !ok {
            errors.push(FieldError {
                field: "email".into(),
                message: format!(
                    "adresse électronique {email:?} invalide : attendu nom@domaine.fr"
                ),
            });
        }
    }
    let data = body.data.unwrap_or_else(|| serde_json::json!({}));
    if !data.is_object() {
        errors.push(FieldError {
            field: "data".into(),
            message: "« data » doit être un objet JSON".into(),
        });
    }
    check_statutory(&data, &mut errors);
    if !errors.is_empty() {
        return Err(AppError::Validation {
            detail: "fiche agent invalide".into(),
            errors,
        });
    }
    Ok(AgentFields {
        display_name: body.display_name.trim().to_owned(),
        email: body.email,
        data,
    })
}

/// Checks the statutory fields of an agent's `data` when present: `statut` (decides MAD
/// eligibility), `categorie`, `filiere`, `echelon`, and text fields.
fn check_statutory(data: &serde_json::Value, errors: &mut Vec<FieldError>) {
    use passerelle_protocol::vocab::{AgentStatut, Categorie, Filiere};
    let mut push = |field: &str, message: String| {
        errors.push(FieldError {
            field: format!("data.{field}"),
            message,
        });
    };
    if let Some(v) = data.get("statut")
        && serde_json::from_value::<AgentStatut>(v.clone()).is_err()
    {
        push(
            "statut",
            format!(
                "situation statutaire {v} inconnue : fonctionnaire_titulaire, fonctionnaire_stagiaire, contractuel_cdi, contractuel_cdd, contractuel_projet, apprenti, autre"
            ),
        );
    }
    if let Some(v) = data.get("categorie")
        && serde_json::from_value::<Categorie>(v.clone()).is_err()
    {
        push("categorie", format!("catégorie {v} inconnue : A, B ou C"));
    }
    if let Some(v) = data.get("filiere")
        && serde_json::from_value::<Filiere>(v.clone()).is_err()
    {
        push(
            "filiere",
            format!(
                "filière {v} inconnue : administrative, technique, culturelle, sportive, animation, sociale, medico_sociale, medico_technique, police_municipale, sapeurs_pompiers"
            ),
        );
    }
    if let Some(v) = data.get("echelon")
        && !v.as_u64().is_some_and(|e| (1..=20).contains(&e))
    {
        push(
            "echelon",
            format!("échelon {v} invalide : un entier de 1 à 20"),
        );
    }
    for field in ["cadre_emplois", "grade", "service", "temps_travail"] {
        if let Some(v) = data.get(field)
            && !v.is_string()
        {
            push(field, format!("« {field} » doit être un texte"));
        }
    }
}

/// # `GET /api/v1/agents`
/// Local agents.
#[utoipa::path(get, path = "/api/v1/agents", tag = "agents",
    responses((status = 200, body = Vec<AgentView>), (status = 401, body = Problem)))]
pub async fn list_agents(
    State(state): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<Vec<AgentView>>, AppError> {
    p.require(Role::Lecteur)?;
    Ok(Json(
        state
            .store()
            .agents()
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

/// # `POST /api/v1/agents`
/// Creates a local agent (rh).
#[utoipa::path(post, path = "/api/v1/agents", tag = "agents", request_body = AgentBody,
    responses((status = 201, body = AgentView), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_agent(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppJson(body): AppJson<AgentBody>,
) -> Result<(StatusCode, Json<AgentView>), AppError> {
    p.require(Role::Rh)?;
    let fields = check(body)?;
    let agent = state
        .store()
        .create_agent(&fields, &p.audit("agent.create", "agent"))
        .await?;
    Ok((StatusCode::CREATED, Json(agent.into())))
}

/// # `GET /api/v1/agents/{id}`
/// One agent.
#[utoipa::path(get, path = "/api/v1/agents/{id}", tag = "agents", params(("id" = Uuid, Path, description = "Agent id")),
    responses((status = 200, body = AgentView), (status = 404, body = Problem)))]
pub async fn get_agent(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<AgentView>, AppError> {
    p.require(Role::Lecteur)?;
    Ok(Json(state.store().agent(id).await?.into()))
}

/// # `PUT /api/v1/agents/{id}`
/// Replaces an agent's fields (rh).
#[utoipa::path(put, path = "/api/v1/agents/{id}", tag = "agents", params(("id" = Uuid, Path, description = "Agent id")),
    request_body = AgentBody,
    responses((status = 200, body = AgentView), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn put_agent(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<AgentBody>,
) -> Result<Json<AgentView>, AppError> {
    p.require(Role::Rh)?;
    let fields = check(body)?;
    let agent = state
        .store()
        .update_agent(id, &fields, &p.audit("agent.update", format!("agent:{id}")))
        .await?;
    Ok(Json(agent.into()))
}

/// # `DELETE /api/v1/agents/{id}`
/// Deletes an agent (rh); its published profiles are withdrawn first (partners erase
/// them).
#[utoipa::path(delete, path = "/api/v1/agents/{id}", tag = "agents", params(("id" = Uuid, Path, description = "Agent id")),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete_agent(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath(id): AppPath<Uuid>,
) -> Result<StatusCode, AppError> {
    p.require(Role::Rh)?;
    // The agent's published profiles are withdrawn first: partners erase them.
    crate::mobility::profiles::withdraw_for_agent(state.federation(), &p, id).await?;
    state
        .store()
        .delete_agent(id, &p.audit("agent.delete", format!("agent:{id}")))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
