"""The `itsm` command (contract): serve, user create, demo, deploy, lint."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
from pathlib import Path

from sqlalchemy import inspect

from engine.domain.roles import ALL_ROLES, LANE_ROLES
from engine.domain.script_helpers import HELPER_NAMES
from engine.persistence.audit_key import AuditKeyError
from engine.persistence.db import Database
from engine.persistence.migrate import migrate
from engine.services.audit import verify as audit_verify
from engine.services.context import ServiceContext
from engine.services.errors import Conflict, Invalid
from engine.services.intake.inbound import MAX_MESSAGE_BYTES
from engine.services.ops import backup, restore
from engine.services.ops.channels import ChannelWorkers
from engine.services.ops.worker import TimerWorker
from engine.services.people import users
from engine.services.people.profiles import LANGUAGES
from engine.services.process import definitions
from engine.workflow.definitions import DefinitionInvalid, compile_definition
from engine.workflow.lint import LintProblem
from engine.workflow.serialization import StateSerializer
from web.logs import LogConfigError, configure_logging
from web.server import ServerConfigError, ServerSettings, create_server, raise_open_files_limit
from web.settings import SettingError, Settings

DEMO_ROLES = {
    "reporter": ["reporter"],
    "desk": ["service_desk"],
    "engineer2": ["level2"],
    "engineer2b": ["level2"],
    "engineer3": ["level3"],
    "vendor": ["vendor"],
    "manager": ["incident_manager"],
    "director": ["director"],
    "designer": ["designer"],
    "admin": ["admin"],
    "gateway": ["integration"],  # a program's user: an admin issues it an API key
}


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (Invalid, Conflict) as exc:
        print(f"itsm: {exc.message}", file=sys.stderr)
        if isinstance(exc.details, dict):
            for field, message in exc.details.items():
                print(f"  {field}: {message}", file=sys.stderr)
        elif isinstance(exc.details, list):
            for problem in exc.details:
                print(f"  {_format_problem(args, problem)}", file=sys.stderr)
        return 2
    except (AuditKeyError, SettingError) as exc:
        # A short ITSM_AUDIT_KEY, an unreadable key file, an ITSM_* value that is not a
        # number: a setting to fix (the message names it), not a crash.
        print(f"itsm: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="itsm", description="ITIL incident management")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the web app (production WSGI server)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--threads",
        type=int,
        default=None,
        help="worker threads (default: ITSM_SERVER_THREADS, else 8)",
    )
    serve.add_argument(
        "--no-worker", action="store_true", help="do not run the timer worker in this process"
    )
    serve.set_defaults(handler=_serve)

    worker = sub.add_parser("worker", help="run only the SLA/BPMN timer worker")
    worker.add_argument("--interval", type=float, default=1.0)
    worker.set_defaults(handler=_worker)

    user = sub.add_parser("user", help="manage users")
    user_sub = user.add_subparsers(required=True, metavar="ACTION")
    create = user_sub.add_parser("create", help="create a user; the password is read from stdin")
    create.add_argument("username")
    create.add_argument("--role", action="append", required=True, choices=sorted(ALL_ROLES))
    create.add_argument(
        "--org",
        metavar="ORG",
        help="a vendor's organisation (default: default); created if it does not exist yet",
    )
    create.add_argument("--email", metavar="ADDRESS", help="the user's e-mail address (unique)")
    create.add_argument(
        "--language", metavar="LANG", choices=LANGUAGES, help="zh_Hant_TW (default) or en"
    )
    create.set_defaults(handler=_user_create)

    demo = sub.add_parser("demo", help="create one demo user per role and print passwords")
    demo.set_defaults(handler=_demo)

    deploy = sub.add_parser("deploy", help="lint and deploy a BPMN file as a new version")
    deploy.add_argument("file", type=Path)
    deploy.add_argument("--note", default="")
    deploy.set_defaults(handler=_deploy)

    lint = sub.add_parser("lint", help="check a BPMN file without deploying it")
    lint.add_argument("file", type=Path)
    lint.set_defaults(handler=_lint)

    audit = sub.add_parser("audit", help="the tamper-evident audit trail")
    audit_sub = audit.add_subparsers(required=True, metavar="ACTION")
    verify = audit_sub.add_parser(
        "verify", help="check every event chain; exit 1 naming the first broken link"
    )
    verify.set_defaults(handler=_audit_verify)

    backup_command = sub.add_parser("backup", help="write a backup of the database and files")
    backup_command.add_argument("file", type=Path)
    backup_command.set_defaults(handler=_backup)

    restore_command = sub.add_parser("restore", help="restore a backup into an empty database")
    restore_command.add_argument("file", type=Path)
    restore_command.set_defaults(handler=_restore)
    return parser


def _logging_configured() -> bool:
    """Logging for serve and worker (web.logs); a bad ITSM_LOG_* stops them before start."""
    try:
        configure_logging()
    except LogConfigError as exc:
        print(f"itsm: {exc}", file=sys.stderr)
        return False
    return True


def prepared_context(settings: Settings) -> ServiceContext:
    """Open the database and bring its schema to the newest revision."""
    db = Database(settings.database_url)
    migrate(db.engine)
    return ServiceContext(db=db, channels=settings.channels)


def _serve(args: argparse.Namespace) -> int:
    from web.app import create_app

    if not _logging_configured():
        return 2
    settings = Settings()
    try:
        # Waitress refuses larger bodies before the app sees them: the largest any route
        # reads (an attachment, a raw inbound mail), not only the app's own default.
        largest = max(
            settings.max_upload_bytes, settings.channels.attachment_max_bytes, MAX_MESSAGE_BYTES
        )
        server_settings = ServerSettings.from_env(max_upload_bytes=largest)
    except ServerConfigError as exc:
        print(f"itsm: {exc}", file=sys.stderr)
        return 2
    if args.threads is not None:
        if args.threads < 1:
            print("itsm: --threads must be at least 1", file=sys.stderr)
            return 2
        server_settings = dataclasses.replace(server_settings, threads=args.threads)
    open_files = raise_open_files_limit()
    context = prepared_context(settings)
    deployed = definitions.deploy_bundled_if_empty(context)
    if deployed is not None:
        logging.info("deployed the bundled process %s v%s", deployed.key, deployed.version)
    app = create_app(settings, context)
    server = create_server(app, server_settings, args.host, args.port, open_files)
    if not args.no_worker:
        TimerWorker(context).start_thread()
        ChannelWorkers(context).start()
    logging.info(
        "server: %d threads, %d connections, idle timeout %d s, request timeout %d s",
        server.adj.threads,
        server.adj.connection_limit,
        server.adj.channel_timeout,
        server_settings.request_timeout,
    )
    print(f"itsm: serving on http://{args.host}:{args.port}", flush=True)
    server.run()
    return 0


def _worker(args: argparse.Namespace) -> int:
    if not _logging_configured():
        return 2
    context = prepared_context(Settings())
    worker = TimerWorker(context, interval=args.interval)
    channels = ChannelWorkers(context)
    channels.start()
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    try:
        worker.run_forever()
    except KeyboardInterrupt:
        worker.stop()
    channels.stop()
    return 0


def _user_create(args: argparse.Namespace) -> int:
    password = sys.stdin.readline().rstrip("\n")
    context = prepared_context(Settings())
    created = users.create_user(
        context,
        args.username,
        password,
        args.role,
        vendor_org=args.org,
        create_org_as="cli",
        email=args.email,
        language=args.language,
    )
    org = f", organisation {created.vendor_org}" if created.vendor_org else ""
    print(f"itsm: created user {args.username} ({', '.join(args.role)}{org})")
    return 0


def _demo(args: argparse.Namespace) -> int:
    context = prepared_context(Settings())
    definitions.deploy_bundled_if_empty(context)
    print("demo users (username  password  roles):")
    for username, roles in DEMO_ROLES.items():
        if users.user_exists(context, username):
            print(f"  {username:<11} (exists, password unchanged)  {', '.join(roles)}")
            continue
        password = users.generate_password(username)
        users.create_user(context, username, password, roles)
        print(f"  {username:<11} {password}  {', '.join(roles)}")
    return 0


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise Invalid(f"{path}: cannot read ({exc.strerror})", []) from exc


def _deploy(args: argparse.Namespace) -> int:
    context = prepared_context(Settings())
    xml = _read_file(args.file)
    info = definitions.deploy_as(context, "cli", xml, args.note)
    print(f"itsm: deployed {info.key} version {info.version}")
    return 0


def _lint(args: argparse.Namespace) -> int:
    """Everything a deployment checks (our rules, then SpiffWorkflow's parser)."""
    warnings: tuple[LintProblem, ...] = ()
    try:
        compiled = compile_definition(
            _read_file(args.file),
            helper_names=HELPER_NAMES,
            roles=LANE_ROLES,
            serializer=StateSerializer(),
        )
        problems = []
        warnings = compiled.warnings
    except DefinitionInvalid as exc:
        problems = exc.problems
    for warning in warnings:  # a missing translation: reported, still deployable
        print(
            "warning: " + _format_problem(
                args,
                {"element": warning.element, "line": warning.line, "message": warning.message},
            ),
            file=sys.stderr,
        )
    for problem in problems:
        print(
            _format_problem(
                args,
                {"element": problem.element, "line": problem.line, "message": problem.message},
            ),
            file=sys.stderr,
        )
    if problems:
        print(f"itsm: {args.file}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"itsm: {args.file}: no problems")
    return 0


def _attachment_dir() -> Path:
    """The blob store's folder (attachments, raw mails): ITSM_ATTACHMENT_DIR, else
    attachments/ in the instance folder, as the server uses it."""
    return Settings().channels.attachment_dir


def _backup(args: argparse.Namespace) -> int:
    # No migration first: a backup is taken of the database as it is, e.g. before an upgrade.
    context = ServiceContext(db=Database(Settings().database_url))
    summary = backup.create_backup(context, args.file, _attachment_dir())
    print(
        f"itsm: backed up {summary.database} ({summary.method}, schema {summary.revision}, "
        f"{sum(summary.tables.values())} rows in {len(summary.tables)} tables, "
        f"{summary.blobs} stored files, {summary.attachments} other files) to {args.file} "
        f"({summary.size} bytes)"
    )
    if summary.missing_blobs:
        print(
            f"itsm: warning: {len(summary.missing_blobs)} files the database names are not in "
            f"{_attachment_dir()}: {', '.join(summary.missing_blobs)}",
            file=sys.stderr,
        )
    return 0


def _restore(args: argparse.Namespace) -> int:
    context = ServiceContext(db=Database(Settings().database_url))
    summary = restore.restore_backup(context, args.file, _attachment_dir())
    print(
        f"itsm: restored {args.file} into {summary.database} ({summary.method}, schema "
        f"{summary.revision}, now {summary.head}; {sum(summary.tables.values())} rows in "
        f"{len(summary.tables)} tables, {summary.blobs} stored files, "
        f"{summary.attachments} other files)"
    )
    return 0


def _audit_verify(args: argparse.Namespace) -> int:
    # No migration first: the database is checked as it is.
    db = Database(Settings().database_url)
    try:
        if not inspect(db.engine).has_table("audit_chain_heads"):
            print(
                "itsm: this database has no audit chains yet (schema before 0009)", file=sys.stderr
            )
            return 2
        context = ServiceContext(db=db)
        result = audit_verify.verify_all(context)
    except AuditKeyError as exc:
        print(f"itsm: {exc}", file=sys.stderr)
        return 2
    finally:
        db.dispose()
    count = result.count
    if result.failure is not None:
        print(f"itsm: audit trail broken: {result.failure}", file=sys.stderr)
        print(
            f"itsm: {count.events} events in {count.chains} chains checked before it",
            file=sys.stderr,
        )
        return 1
    print(f"itsm: audit trail verified: {count.chains} chains, {count.events} events")
    return 0


def _format_problem(args: argparse.Namespace, problem: dict[str, object]) -> str:
    where = str(getattr(args, "file", "") or "")
    if problem.get("line"):
        where += f":{problem['line']}"
    element = f" [{problem['element']}]" if problem.get("element") else ""
    return f"{where}:{element} {problem['message']}"


if __name__ == "__main__":
    sys.exit(main())
