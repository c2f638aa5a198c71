"""The one error hierarchy of both applications.

A leaf module: it imports only the standard library, so every layer can raise these errors and
the CLI error boundary can render them. Each class carries a stable kebab-case reference (shown
to the operator and documented in docs/reference/errors.md), an exit code and a default hint
saying what to do next. Messages never contain patient data or key material: name a study by a
short hash or an accession only in output meant for the clinic.
"""

from __future__ import annotations

from typing import ClassVar


class ArchiveError(Exception):
    """Base of every domain error; anything else reaching the boundary is an internal error."""

    ref: ClassVar[str] = "error"
    exit_code: ClassVar[int] = 1
    default_hint: ClassVar[str] = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = self.default_hint if hint is None else hint


# -- configuration and usage ------------------------------------------------------------------


class ConfigError(ArchiveError):
    ref = "config-invalid"
    exit_code = 3
    default_hint = "Fix the named file or field and run the command again."


class NotInitialised(ArchiveError):
    ref = "not-initialised"
    exit_code = 4
    default_hint = "Run the matching `init` command first."


class AlreadyInitialised(ArchiveError):
    ref = "already-initialised"
    exit_code = 5
    default_hint = "Choose another location, or keep using the existing one."


class PassphraseError(ArchiveError):
    ref = "wrong-passphrase"
    exit_code = 6
    default_hint = "Check the passphrase (or the variable or file it comes from) and try again."


class KeyFileError(ArchiveError):
    ref = "key-file-invalid"
    exit_code = 7
    default_hint = "Restore the key file from your backup; it is not a key file this tool wrote."


class CardError(ArchiveError):
    ref = "card-invalid"
    exit_code = 8
    default_hint = "Ask for a fresh card file; this one is damaged or of another kind."


# -- courier side -----------------------------------------------------------------------------


class SourceError(ArchiveError):
    ref = "source-unreadable"
    exit_code = 10
    default_hint = "Check that the clinic terminal's folder is mounted and readable."


class DriveError(ArchiveError):
    ref = "drive-unusable"
    exit_code = 11
    default_hint = "Check that the drive is inserted, mounted and writable."


class DriveFull(ArchiveError):
    ref = "drive-full"
    exit_code = 12
    default_hint = "Free space on the drive or use a larger one, then run the pull again to resume."


# -- bundles ----------------------------------------------------------------------------------


class BundleError(ArchiveError):
    ref = "bundle-invalid"
    exit_code = 20
    default_hint = "Keep the drive as it is and report the bundle id to the center's support."


class BundleUnsealed(BundleError):
    ref = "bundle-unsealed"
    exit_code = 21
    default_hint = "The pull that wrote it did not finish: run `courier pull` again to complete it."


class BundleSignatureInvalid(BundleError):
    ref = "bundle-bad-signature"
    exit_code = 22


class BundleWrongSigner(BundleError):
    ref = "bundle-wrong-signer"
    exit_code = 23


class BundleDamaged(BundleError):
    ref = "bundle-damaged"
    exit_code = 24


class BundleFormatUnsupported(BundleError):
    ref = "bundle-format-unsupported"
    exit_code = 25
    default_hint = "Upgrade this software to a version that reads this bundle format."


class DecryptError(BundleError):
    ref = "decrypt-failed"
    exit_code = 26
    default_hint = "Check that the archive's key matches the center card the courier was given."


class NoBundles(ArchiveError):
    ref = "drive-no-bundles"
    exit_code = 27
    default_hint = "Check that this is the courier drive; `courier verify DRIVE` lists its bundles."


# -- center side ------------------------------------------------------------------------------


class DeviceUnknown(ArchiveError):
    ref = "device-unknown"
    exit_code = 30
    default_hint = "Enrol the courier device with `center courier enroll CARD` if it is genuine."


class DeviceRevoked(ArchiveError):
    ref = "device-revoked"
    exit_code = 31
    default_hint = "This device was revoked; contact the security officer before importing."


class IntegrityError(ArchiveError):
    ref = "integrity-failed"
    exit_code = 32
    default_hint = "Run `center check --read-data` and restore the named object from backup."


class StorageError(ArchiveError):
    ref = "storage-failed"
    exit_code = 33
    default_hint = "Check free space and permissions of the archive, then run the command again."


# -- operators, search, export and output requests (center) ---------------------------------


class AuthenticationFailed(ArchiveError):
    ref = "operator-authentication-failed"
    exit_code = 80
    default_hint = (
        "Check the operator name (--operator / CENTER_OPERATOR) and the passphrase "
        "(CENTER_OPERATOR_PASSPHRASE or _FILE); an administrator can reset it with "
        "`center operator passwd NAME`."
    )


class OperatorDisabled(ArchiveError):
    ref = "operator-disabled"
    exit_code = 81
    default_hint = "Ask an administrator; disabled operators cannot run center commands."


class NotAuthorised(ArchiveError):
    ref = "not-authorised"
    exit_code = 82
    default_hint = (
        "Ask an operator whose role allows this action, or an administrator to change roles "
        "(see `center operator list`)."
    )


class OperatorExists(ArchiveError):
    ref = "operator-exists"
    exit_code = 83
    default_hint = "Choose another name; names are unique regardless of letter case."


class OperatorUnknown(ArchiveError):
    ref = "operator-unknown"
    exit_code = 84
    default_hint = "Check the name with `center operator list`."


class LastAdmin(ArchiveError):
    ref = "last-admin"
    exit_code = 85
    default_hint = "Add another administrator first with `center operator add NAME --role admin`."


class QueryInvalid(ArchiveError):
    ref = "query-invalid"
    exit_code = 86
    default_hint = "Fix the named criterion (see `center search --help`) and run the command again."


class NothingToExport(ArchiveError):
    ref = "export-empty"
    exit_code = 87
    default_hint = "Check the criteria with `center search` first; nothing was written or sent."


class ExportError(ArchiveError):
    ref = "export-failed"
    exit_code = 88
    default_hint = "Choose a new or empty destination folder and run the export again."


class PacsError(ArchiveError):
    ref = "pacs-failed"
    exit_code = 89
    default_hint = (
        "Check the destination's AE title, host and port, and that it accepts our AE title "
        "(CLINICARCHIVE); then run the export again (a PACS ignores instances it already has)."
    )


class RequestUnknown(ArchiveError):
    ref = "request-unknown"
    exit_code = 90
    default_hint = "Check the request id with `center request list`."


class RequestClosed(ArchiveError):
    ref = "request-closed"
    exit_code = 91
    default_hint = "Record a new request with `center request add` if the clinic asks again."


# -- retention and expiry (issue 5) -----------------------------------------------------------


class RulesInvalid(ConfigError):
    ref = "retention-rules-invalid"
    exit_code = 50
    default_hint = "Fix the lines named above and run the command again; nothing was changed."


class StudyNotFound(ArchiveError):
    ref = "study-not-found"
    exit_code = 51
    default_hint = "Check the accession or Study Instance UID, and --facility if you gave one."


class StudyAmbiguous(ArchiveError):
    ref = "study-ambiguous"
    exit_code = 52
    default_hint = "Name the study by its Study Instance UID, or add --facility."


class PatientNotFound(ArchiveError):
    ref = "patient-not-found"
    exit_code = 53
    default_hint = "Check the patient ID and the facility id."


class HoldNotFound(ArchiveError):
    ref = "hold-not-found"
    exit_code = 54
    default_hint = "`center hold list --all` shows every hold with its number."


class NoticeNotFound(ArchiveError):
    ref = "notice-not-found"
    exit_code = 55
    default_hint = "`center expiry notices` lists the expiry notices and their delivery state."


ALL_ERRORS: tuple[type[ArchiveError], ...] = (
    ArchiveError,
    ConfigError,
    NotInitialised,
    AlreadyInitialised,
    PassphraseError,
    KeyFileError,
    CardError,
    SourceError,
    DriveError,
    DriveFull,
    BundleError,
    BundleUnsealed,
    BundleSignatureInvalid,
    BundleWrongSigner,
    BundleDamaged,
    BundleFormatUnsupported,
    DecryptError,
    NoBundles,
    DeviceUnknown,
    DeviceRevoked,
    IntegrityError,
    StorageError,
    AuthenticationFailed,
    OperatorDisabled,
    NotAuthorised,
    OperatorExists,
    OperatorUnknown,
    LastAdmin,
    QueryInvalid,
    NothingToExport,
    ExportError,
    PacsError,
    RequestUnknown,
    RequestClosed,
    RulesInvalid,
    StudyNotFound,
    StudyAmbiguous,
    PatientNotFound,
    HoldNotFound,
    NoticeNotFound,
)
