//! Console actions on partners (admin, as in the API): ask a node to become a partner,
//! accept or refuse a pending request, follow back or stop following, pull a partner's
//! outbox now, retry its deliveries now, replay dead letters, block and unblock, create
//! and delete circles. Every handler calls the federation service the API calls
//! (`federation::partners`) or the same store function.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::json;
use uuid::Uuid;

use super::pages::form;
use super::{ConsoleError, User, see_other};
use crate::federation::FederationError;
use crate::federation::partners;
use crate::state::AppState;
use crate::store::{BlockKind, Role};

/// French notice of a `?ok=` code on the partners page (fixed texts).
pub fn partners_notice(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "demande" => "La demande de partenariat a été envoyée.",
        "acceptee" => "La demande de partenariat a été acceptée.",
        "refusee" => "La demande de partenariat a été refusée.",
        "suivi" => "Le nœud est désormais suivi (ses offres nous sont envoyées).",
        "plus_suivi" => "Le nœud n'est plus suivi.",
        "synchro" => "La récupération des publications du nœud a été demandée.",
        "relance" => "Les envois en attente vers ce nœud sont relancés maintenant.",
        "rejoues" => "Les envois abandonnés ont été remis dans la file d'envoi.",
        "bloque" => "Le blocage a été enregistré.",
        "debloque" => "Le blocage a été levé.",
        "cercle" => "Le cercle a été enregistré.",
        "cercle_supprime" => "Le cercle a été supprimé.",
        _ => return None,
    })
}

fn fed_error(e: FederationError) -> ConsoleError {
    crate::http::error::AppError::from(e).into()
}

fn partner_id(id: &str) -> Result<Uuid, ConsoleError> {
    id.parse()
        .map_err(|_| ConsoleError::NotFound("Ce partenaire n'existe pas.".into()))
}

async fn actor_of(state: &AppState, id: &str) -> Result<String, ConsoleError> {
    Ok(state.store().partner(partner_id(id)?).await?.actor_id)
}

fn done(code: &str) -> Response {
    see_other(&format!("/console/partenaires?ok={code}"))
}

/// # `POST /console/partenaires/demande` (admin)
/// Asks a node (`address`: actor URL, site or account) to become a partner.
pub async fn post_request(
    State(state): State<AppState>,
    user: User,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    user.require(Role::Admin)?;
    let f = form(&user, &body)?;
    let address = f.text("address");
    if address.is_empty() {
        return Err(ConsoleError::BadRequest(
            "Indiquez l'adresse du nœud (https://rh.ville.fr ou drh@rh.ville.fr).".into(),
        ));
    }
    partners::follow(state.federation(), &address, &user.principal.actor)
        .await
        .map_err(fed_error)?;
    Ok(done("demande"))
}

/// # `POST /console/partenaires/{id}/{action}` (admin)
/// `accepter`, `refuser`, `suivre`, `ne-plus-suivre`, `synchroniser`, `relancer`.
pub async fn post_action(
    State(state): State<AppState>,
    user: User,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    user.require(Role::Admin)?;
    form(&user, &body)?;
    let fed = state.federation();
    let who = user.principal.actor.as_str();
    let code = match action.as_str() {
        "accepter" => {
            partners::accept(fed, &actor_of(&state, &id).await?, Some(who))
                .await
                .map_err(fed_error)?;
            "acceptee"
        }
        "refuser" => {
            partners::reject(fed, &actor_of(&state, &id).await?, Some(who))
                .await
                .map_err(fed_error)?;
            "refusee"
        }
        "suivre" => {
            partners::follow(fed, &actor_of(&state, &id).await?, who)
                .await
                .map_err(fed_error)?;
            "suivi"
        }
        "ne-plus-suivre" => {
            partners::unfollow(fed, &actor_of(&state, &id).await?, who)
                .await
                .map_err(fed_error)?;
            "plus_suivi"
        }
        "synchroniser" => {
            let actor = actor_of(&state, &id).await?;
            state.store().request_pull(Some(&actor)).await?;
            "synchro"
        }
        "relancer" => {
            let partner = state.store().partner(partner_id(&id)?).await?;
            state
                .store()
                .retry_inbox_now(partner.delivery_inbox())
                .await?;
            "relance"
        }
        _ => return Err(ConsoleError::NotFound("Action inconnue.".into())),
    };
    Ok(done(code))
}

/// # `POST /console/partenaires/rejouer` (admin)
/// Puts the dead letters (of one `inbox`, or all) back in the delivery queue.
pub async fn post_replay(
    State(state): State<AppState>,
    user: User,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    user.require(Role::Admin)?;
    let f = form(&user, &body)?;
    let inbox = Some(f.text("inbox")).filter(|i| !i.is_empty());
    let requeued = state.store().replay_dead_letters(inbox.as_deref()).await?;
    let mut audit = user.principal.audit(
        "delivery.replay",
        inbox.clone().unwrap_or_else(|| "all".to_owned()),
    );
    audit.details = json!({ "requeued": requeued });
    state.store().record_audit(&audit).await?;
    Ok(done("rejoues"))
}

/// # `POST /console/partenaires/blocages` (admin)
/// Blocks a node (`kind=noeud`) or a whole domain (`kind=domaine`).
pub async fn post_block(
    State(state): State<AppState>,
    user: User,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    user.require(Role::Admin)?;
    let f = form(&user, &body)?;
    let kind = if f.text("kind") == "domaine" {
        BlockKind::Origin
    } else {
        BlockKind::Actor
    };
    partners::block(
        state.federation(),
        &f.text("target"),
        kind,
        &f.text("reason"),
        &user.principal.actor,
    )
    .await
    .map_err(fed_error)?;
    Ok(done("bloque"))
}

/// # `POST /console/partenaires/blocages/lever` (admin)
pub async fn post_unblock(
    State(state): State<AppState>,
    user: User,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    user.require(Role::Admin)?;
    let f = form(&user, &body)?;
    partners::unblock(state.federation(), &f.text("target"), &user.principal.actor)
        .await
        .map_err(fed_error)?;
    Ok(done("debloque"))
}

/// # `POST /console/partenaires/cercles` (admin)
/// Creates a circle (`name`, `members` repeated: partners' actor ids).
pub async fn post_circle(
    State(state): State<AppState>,
    user: User,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    user.require(Role::Admin)?;
    let f = form(&user, &body)?;
    partners::put_circle(
        state.federation(),
        None,
        &f.text("name"),
        &f.all("members"),
        &user.principal.actor,
    )
    .await
    .map_err(fed_error)?;
    Ok(done("cercle"))
}

/// # `POST /console/partenaires/cercles/{id}/supprimer` (admin)
pub async fn post_circle_delete(
    State(state): State<AppState>,
    user: User,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    user.require(Role::Admin)?;
    form(&user, &body)?;
    let id: Uuid = id
        .parse()
        .map_err(|_| ConsoleError::NotFound("Ce cercle n'existe pas.".into()))?;
    let audit = user
        .principal
        .audit("circle.delete", format!("circle:{id}"));
    state.store().delete_circle(id, &audit).await?;
    Ok(done("cercle_supprime"))
}
