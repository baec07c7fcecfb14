"""How the models do on real cars: sale prices reported back on jobs, each model version's
live accuracy from them, and drift (are the cars priced still like the training data)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from api.deps import Commands, CurrentUser, Deps, Models, ReadSide
from api.errors import ApiError
from api.routes.predict import parse_job_id
from api.schemas import (
    ChallengerCardPublic,
    ChallengersPublic,
    DriftFeaturePublic,
    DriftPublic,
    LivePublic,
    LiveVersionPublic,
    SaleCreate,
    SalePublic,
    ShadowComparisonPublic,
)
from domain.accuracy import mean_interval, wilson
from model_registry.card import ModelCard

router = APIRouter(tags=["model quality"])


@router.post("/predict/{job_id}/outcome", response_model=SalePublic)
async def report_sale(job_id: str, body: SaleCreate, user: CurrentUser, commands: Commands) -> SalePublic:
    """Report the price the car of one of your jobs actually sold for. It is recorded as an
    event on the job; a later report corrects it (the latest counts). It feeds the models'
    live accuracy; it costs nothing and changes no balance."""
    made = await run_in_threadpool(commands.report_sale, user, parse_job_id(job_id), body.sold_price)
    return SalePublic(job_id=made.job_id, sold_price=made.sold_price, superseded=made.superseded,
                      recorded=made.recorded)


@router.get("/predictors/{model_name}/live", response_model=LivePublic)
async def live(model_name: str, _: CurrentUser, models: Models, reads: ReadSide) -> LivePublic:
    """How each version of a model priced the cars whose sale prices came back (every user's
    reports, no one's data): MAE, MAPE and the coverage of the 80 % range, each with its 95 %
    interval and the number of reports behind it."""
    if model_name not in {c.name for c in models.champion_cards()}:
        raise ApiError(404, "Unknown model", f"unknown model {model_name[:64]!r}")
    versions = []
    for r in await reads.live(model_name):
        versions.append(LiveVersionPublic(
            version=r.model_version, reports=r.reports, mae=r.mae,
            mae_ci=mean_interval(r.mae, r.mae_sd, r.reports), mape=r.mape,
            mape_ci=mean_interval(r.mape, r.mape_sd, r.reports), ranged=r.ranged,
            coverage=r.covered / r.ranged if r.ranged else None,
            coverage_ci=wilson(r.covered, r.ranged)))
    return LivePublic(model_name=model_name, versions=versions)


@router.get("/predictors/{model_name}/drift", response_model=DriftPublic)
async def drift(model_name: str, _: CurrentUser, models: Models, c: Deps) -> DriftPublic:
    """Whether the cars priced lately still look like the training data: each feature's
    population stability index (training data against the last DRIFT_WINDOW finished jobs of
    this model, every user's) and, for categories, the share the training data never had.
    Under 0.1 is stable, above DRIFT_PSI_THRESHOLD (0.25) is drift; it is logged as a warning."""
    if model_name not in {card.name for card in models.champion_cards()}:
        raise ApiError(404, "Unknown model", f"unknown model {model_name[:64]!r}")
    if c.drift is None:
        raise ApiError(503, "Service unavailable", "drift is not measured here")
    made = await run_in_threadpool(c.drift.report, model_name)
    return DriftPublic(model_name=model_name, window=made.window, cars=made.cars,
                       threshold=made.threshold, min_cars=made.min_cars, drifting=made.drifting,
                       features=[DriftFeaturePublic(feature=f.feature, psi=round(f.psi, 4),
                                                    unseen_share=round(f.unseen_share, 4))
                                 for f in made.features])


def _card(card: ModelCard) -> ChallengerCardPublic:
    r2, mae = card.metrics.get("r2", {}), card.metrics.get("mae", {})
    return ChallengerCardPublic(version=card.version, cv_r2=r2.get("mean"), cv_r2_std=r2.get("std"),
                                cv_mae=mae.get("mean"), data_file=card.data_file,
                                training_rows=card.training_rows, created_at=card.created_at)


@router.get("/predictors/{model_name}/challengers", response_model=ChallengersPublic)
async def challengers(model_name: str, _: CurrentUser, models: Models, reads: ReadSide,
                      c: Deps) -> ChallengersPublic:
    """A model's champion (the version serving paid jobs) and its challengers (newer versions,
    each pricing a share of the paid jobs in the shadow: unbilled, unseen by their owners),
    compared on the same cars: the median difference of their prices and, where sale prices
    came back, both versions' MAE and the coverage of their 80 % ranges."""
    if model_name not in models.names():
        raise ApiError(404, "Unknown model", f"unknown model {model_name[:64]!r}")
    comparisons = []
    for r in await reads.challengers(model_name):
        comparisons.append(ShadowComparisonPublic(
            version=r.version, champion_version=r.champion_version, shadowed=r.shadowed,
            failed=r.failed, median_abs_difference=r.median_abs_difference,
            median_difference=r.median_difference, reports=r.reports, mae=r.mae,
            mae_ci=mean_interval(r.mae, r.mae_sd, r.reports), champion_mae=r.champion_mae,
            champion_mae_ci=mean_interval(r.champion_mae, r.champion_mae_sd, r.reports),
            coverage=r.covered / r.ranged if r.ranged else None, coverage_ci=wilson(r.covered, r.ranged),
            champion_coverage=r.champion_covered / r.champion_ranged if r.champion_ranged else None,
            champion_coverage_ci=wilson(r.champion_covered, r.champion_ranged)))
    return ChallengersPublic(
        model_name=model_name, champion=_card(models.card(model_name)),
        challengers=[_card(models.card(model_name, v)) for v in models.challengers(model_name)],
        shadow_share=c.settings.shadow_share, comparisons=comparisons)
