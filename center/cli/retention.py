"""`center retention ...`: the retention rules, why a study expires when it does, and apply."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from center.cli import options as opt
from center.cli.session import operator_session
from common.boundary import error_boundary
from common.errors import ConfigError

if TYPE_CHECKING:
    from center.core.retention_apply import ApplyReport, Explanation
    from common.retention import Rule, RuleSet

app = typer.Typer(
    help="Retention rules: presets, the active rules, why a study expires, apply changes.",
    no_args_is_help=True,
)

StudyRef = Annotated[
    str, typer.Argument(help="The study's accession number or Study Instance UID.")
]


@app.command("presets")
@error_boundary
def presets(
    name: Annotated[
        Optional[str],  # noqa: UP045
        typer.Argument(help="Print this preset's rules file (to copy and edit)."),
    ] = None,
    as_json: opt.JsonOutput = False,
) -> None:
    """List the shipped rule presets (examples, not legal advice), or print one to edit."""
    # imported when the command runs: `center` imports every command module to start one
    from common.retention_rules import list_presets, preset_text

    if name is not None:
        typer.echo(preset_text(name), nl=False)
        return
    found = list_presets()
    if as_json:
        typer.echo(json.dumps([p.__dict__ for p in found], indent=2, ensure_ascii=False))
        return
    table = Table("Preset", "Title", "Rules", "Sources", title="Retention presets")
    for p in found:
        table.add_row(p.name, f"{p.title}\n{p.disclaimer}", str(p.rules), "\n".join(p.sources))
    Console().print(table)


@app.command("validate")
@error_boundary
def validate(
    file: Annotated[Path, typer.Argument(help="A rules file (TOML) to check.", dir_okay=False)],
    as_json: opt.JsonOutput = False,
) -> None:
    """Check a rules file without installing it; every problem is named by line and field."""
    # imported when the command runs: `center` imports every command module to start one
    from common.retention_rules import load_rules

    ruleset = load_rules(_read(file), source=str(file))
    _render_rules(ruleset, {"origin": str(file)}, as_json)


@app.command("show")
@error_boundary
def show(ctx: typer.Context, as_json: opt.JsonOutput = False) -> None:
    """Show the archive's active rules, where they came from and who installed them."""
    # imported when the command runs: `center` imports every command module to start one
    from center.core.retention import active_rules

    with operator_session(ctx, "retention") as session:
        rules = active_rules(session.archive.conn)
    meta = {
        "origin": rules.origin,
        "installed_at": rules.installed_at,
        "installed_by": rules.installed_by,
    }
    _render_rules(rules.ruleset, meta, as_json)


@app.command("set")
@error_boundary
def set_rules(
    ctx: typer.Context,
    file: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Argument(help="The rules file (TOML) to install.", dir_okay=False),
    ] = None,
    preset: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--preset", help="Install a shipped preset instead of a file."),
    ] = None,
) -> None:
    """Install new retention rules (audited); run `center retention apply` afterwards."""
    # imported when the command runs: `center` imports every command module to start one
    from center.core.retention import install_rules
    from common.retention_rules import preset_text

    if (file is None) == (preset is None):
        raise ConfigError("give either a rules FILE or --preset NAME", hint="See --help.")
    text = preset_text(preset) if preset else _read(file)  # type: ignore[arg-type]
    origin = f"preset:{preset}" if preset else str(file)
    with operator_session(ctx, "retention") as session:
        before, after = install_rules(
            session.archive.conn,
            text,
            origin=origin,
            operator=session.operator,
            now=session.state.env.now(),
        )
    Console().print(
        f"Active rules: [bold]{after.ruleset.title}[/bold] (were: {before.ruleset.title}).\n"
        "No expiry has changed yet: run `center retention apply --dry-run` to see the effect, "
        "then `center retention apply`."
    )


@app.command("explain")
@error_boundary
def explain_study(
    ctx: typer.Context,
    study: StudyRef,
    facility: opt.Facility = None,
    as_json: opt.JsonOutput = False,
) -> None:
    """Explain which rules matched a study, why, and what will happen to it."""
    # imported when the command runs: `center` imports every command module to start one
    from center.core.retention_apply import explain
    from center.core.studyref import find_study

    with operator_session(ctx, "retention") as session:
        conn = session.archive.conn
        found = explain(
            conn,
            session.archive.store,
            find_study(conn, study, facility),
            now=session.state.env.now().astimezone(),
        )
    if as_json:
        typer.echo(json.dumps(_explanation_dict(found), indent=2, default=str))
    else:
        _render_explanation(found)


@app.command("apply")
@error_boundary
def apply(
    ctx: typer.Context,
    facility: opt.Facility = None,
    study: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--study", help="Only this study (accession or Study Instance UID)."),
    ] = None,
    override_promise: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--override-promise",
            help="Allow expiries earlier than promised on storage receipts; the REASON is "
            "kept in the audit log.",
            metavar="REASON",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the changes without making them.")
    ] = False,
    as_json: opt.JsonOutput = False,
) -> None:
    """Recompute every study's expiry from the active rules; print a before/after report."""
    # imported when the command runs: `center` imports every command module to start one
    from center.core.retention_apply import apply_rules
    from center.core.studyref import find_study
    from common.richprogress import RichProgress

    with (
        operator_session(ctx, "retention") as session,
        RichProgress(enabled=not as_json) as progress,
    ):
        conn = session.archive.conn
        report = apply_rules(
            conn,
            session.archive.store,
            now=session.state.env.now(),
            operator=session.operator,
            facility_id=facility,
            study=find_study(conn, study, facility) if study else None,
            override_reason=override_promise,
            dry_run=dry_run,
            progress=progress,
            lock_root=session.archive.paths.root,
        )
    if as_json:
        typer.echo(json.dumps(_report_dict(report), indent=2, default=str))
    else:
        _render_report(report)


def _read(file: Path) -> str:
    try:
        return file.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the rules file {file}: {exc}") from exc


def _conditions(rule: Rule) -> str:
    m = rule.match
    parts = [
        f"{label} {', '.join(sorted(values))}"
        for label, values in (
            ("modality", m.modality),
            ("SOP class", m.sop_class),
            ("body part", m.body_part),
            ("facility", m.facility),
        )
        if values
    ]
    parts += [f"description /{m.description}/"] if m.description else []
    for label, ages in (
        ("age at study", m.age_at_study),
        ("age at last visit", m.age_at_last_visit),
    ):
        parts += [f"{label} {ages.describe()}"] if ages else []
    parts += ["no later matching study"] if m.no_later_matching_study else []
    return "; ".join(parts) or "every study"


def _rules_dict(ruleset: RuleSet) -> list[dict[str, Any]]:
    return [
        {
            "id": r.id,
            "description": r.description,
            "conditions": _conditions(r),
            "period": r.period.describe(),
            "anchor": r.anchor,
        }
        for r in (*ruleset.rules, ruleset.fallback)
    ]


def _render_rules(ruleset: RuleSet, meta: dict[str, Any], as_json: bool) -> None:
    recorded = ruleset.recorded_period
    if as_json:
        doc = {
            "name": ruleset.name,
            "title": ruleset.title,
            "disclaimer": ruleset.disclaimer,
            "sources": list(ruleset.sources),
            "sha256": ruleset.sha256,
            "rules": _rules_dict(ruleset),
            "facility_period": None if recorded is None else recorded.__dict__,
            **meta,
        }
        typer.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    console = Console()
    console.print(f"[bold]{ruleset.title}[/bold]  ({ruleset.name}, sha256 {ruleset.sha256[:16]})")
    console.print(" ".join(f"{k.replace('_', ' ')}: {v}" for k, v in meta.items() if v))
    if ruleset.disclaimer:
        console.print(f"[yellow]{ruleset.disclaimer}[/yellow]")
    for source in ruleset.sources:
        console.print(f"  source: {source}")
    table = Table("Rule", "Applies to", "Period", "From", "Description")
    for row in _rules_dict(ruleset):
        table.add_row(
            row["id"], row["conditions"], row["period"], row["anchor"], row["description"]
        )
    console.print(table)
    console.print(
        "The expiry is the latest date any matching rule gives; the fallback only "
        "when none matches."
    )
    if recorded is not None:
        console.print(
            f"A longer period recorded by the facility in {recorded.tag} also counts "
            f"(from the {recorded.anchor})."
        )


def _explanation_dict(found: Explanation) -> dict[str, Any]:
    study, state = found.study, found.state
    return {
        "study": {
            "facility_id": study.facts.facility_id,
            "study_instance_uid": study.facts.study_instance_uid,
            "accession": study.accession,
            "study_date": study.facts.study_date,
            "received": study.facts.received,
            "modalities": sorted(study.facts.modalities),
            "sop_classes": sorted(study.facts.sop_classes),
            "body_parts": sorted(study.facts.body_parts),
            "recorded_period": study.facts.recorded_period,
            "other_studies_of_patient": found.other_studies,
        },
        "ruleset": {"name": found.rules.ruleset.name, "origin": found.rules.origin},
        "rules": [o.__dict__ | {"period": o.period.describe()} for o in found.computed.outcomes],
        "computed": {"expiry": found.computed.expires, "rule": found.computed.rule},
        "flags": list(found.computed.flags),
        "stored": {"expiry": study.expiry, "rule": study.expiry_rule},
        "promised": found.promised,
        "effective_expiry": state.effective,
        "holds": [
            {"hold_id": h.hold_id, "scope": h.scope, "reason": h.reason} for h in found.holds
        ],
        "contract": None if state.contract is None else state.contract.__dict__,
        "decision": state.decision.__dict__,
    }


def _render_explanation(found: Explanation) -> None:
    console, study, state = Console(), found.study, found.state
    facts = study.facts
    console.print(
        f"Study [bold]{study.accession}[/bold] at {facts.facility_id}: study date "
        f"{facts.study_date or '(none)'}, received {facts.received}, modalities "
        f"{', '.join(sorted(facts.modalities)) or '(none)'}; "
        f"{found.other_studies} other stud{'y' if found.other_studies == 1 else 'ies'} "
        "of the patient here."
    )
    console.print(f"Rules: {found.rules.ruleset.title} ({found.rules.origin})")
    table = Table("", "Rule", "Matched", "Why", "From", "Gives")
    for o in found.computed.outcomes:
        table.add_row(
            "→" if o.winner else "",
            o.rule_id,
            "yes" if o.matched else "no",
            "; ".join(o.reasons),
            f"{o.anchor} {o.anchor_date or '?'}" if o.matched else "",
            f"{o.expires}" if o.expires else "",
        )
    console.print(table)
    console.print(f"Computed expiry: [bold]{found.computed.expires}[/bold] ({found.computed.rule})")
    if found.computed.flags:
        console.print(f"[yellow]Flags: {', '.join(found.computed.flags)}[/yellow]")
    console.print(f"Stored expiry: {study.expiry} ({study.expiry_rule})")
    if found.promised:
        console.print(f"Promised on a storage receipt: kept at least until {found.promised}")
    for hold in found.holds:
        console.print(f"[red]HELD[/red] by hold {hold.hold_id} ({hold.scope}): {hold.reason}")
    console.print(
        f"Effective expiry {state.effective}: {state.decision.status} "
        f"({state.decision.reason})"
        + (f"; may be deleted from {state.decision.due_on}" if state.decision.due_on else "")
    )


def _report_dict(report: ApplyReport) -> dict[str, Any]:
    return report.__dict__ | {"changes": [c.__dict__ for c in report.changes]}


def _render_report(report: ApplyReport) -> None:
    console = Console()
    verb = "would change" if report.dry_run else "changed"
    console.print(
        f"Rules {report.ruleset} ({report.origin}): {report.studies} studies checked, "
        f"{len(report.changes)} {verb}."
    )
    if report.changes:
        table = Table("Facility", "Accession", "Before", "After", "Rule", "Note", "Held")
        for c in report.changes:
            table.add_row(
                c.facility_id,
                c.accession,
                str(c.before),
                str(c.after),
                c.rule_after,
                c.note,
                "HELD" if c.held else "",
            )
        console.print(table)
    if report.kept_by_promise:
        console.print(
            f"{report.kept_by_promise} stud(ies) kept at the date promised on a storage receipt; "
            "--override-promise REASON allows earlier dates."
        )
    if report.audit_seq:
        console.print(f"Recorded in the audit log as entry {report.audit_seq}.")
