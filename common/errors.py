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


# -- center import: bundles refused, archive full, receipts, audit, fixity --------------------


class BundleManifestDamaged(BundleError):
    ref = "bundle-manifest-damaged"
    exit_code = 34
    default_hint = (
        "The bundle's signed listing does not match its tag files: the drive is damaged or was "
        "altered. Nothing from this bundle was imported; keep the drive as it is and report the "
        "bundle id to the center's support."
    )


class BundleExtraFile(BundleError):
    ref = "bundle-extra-file"
    exit_code = 35
    default_hint = (
        "A file that the courier did not sign was added to the bundle. Nothing from this bundle "
        "was imported. Find out where it came from; to import the signed content, move the named "
        "file off the drive (keep it for the investigation) and run the import again."
    )


class BundleWrongCenter(BundleError):
    ref = "bundle-wrong-center"
    exit_code = 36
    default_hint = (
        "The bundle is encrypted to another center's key: check which center card the courier "
        "device was set up with (`courier` shows its fingerprint) and bring the drive there."
    )


class CourierLogInvalid(BundleError):
    ref = "courier-log-invalid"
    exit_code = 37
    default_hint = (
        "The courier's visit log carried in the bundle does not verify. Nothing was imported "
        "from this bundle; keep the drive and the courier laptop as they are and contact the "
        "security officer."
    )


class CourierLogForked(BundleError):
    ref = "courier-log-forked"
    exit_code = 38
    default_hint = (
        "The device's visit log contradicts what an earlier bundle of the same device showed: "
        "its history was rewritten or its key is used on two laptops. Keep the drive, contact "
        "the security officer and consider `center courier revoke`."
    )


class BundleIdReused(BundleError):
    ref = "bundle-id-reused"
    exit_code = 39
    default_hint = (
        "A different bundle with this id was imported before; keep the drive as it is and "
        "report the bundle id to the center's support."
    )


class ArchiveFull(StorageError):
    ref = "archive-disk-full"
    exit_code = 40
    default_hint = (
        "Free space on the archive's disk, then run the same import again: it resumes, and "
        "what was already stored is kept."
    )


class BundlePartial(BundleError):
    ref = "bundle-partially-imported"
    exit_code = 41
    default_hint = (
        "Some objects failed verification and were quarantined; the rest is stored and the "
        "storage receipt says what was not. See `<archive>/quarantine/<bundle-id>/report.json`; "
        "the courier pulls the missing instances again on the next visit."
    )


class ReceiptInvalid(ArchiveError):
    ref = "receipt-invalid"
    exit_code = 42
    default_hint = (
        "Do not trust this receipt; keep it, and compare it with the copy the center keeps "
        "(`center receipt show ID`)."
    )


class AuditChainBroken(ArchiveError):
    ref = "audit-chain-broken"
    exit_code = 43
    default_hint = (
        "The audit log was altered. Keep a copy of catalog.sqlite as evidence, contact the "
        "security officer, and compare with the checkpoints printed on storage receipts."
    )


class CheckFindings(ArchiveError):
    ref = "check-findings"
    exit_code = 44
    default_hint = (
        "Read the findings above: restore missing or corrupt objects from backup; orphans "
        "left by an interrupted import are referenced again when the import is re-run."
    )


class ReceiptUnknown(ArchiveError):
    ref = "receipt-unknown"
    exit_code = 45
    default_hint = "Check the receipt id (`center audit show --action import` lists bundles)."


class ArchiveBusy(ArchiveError):
    ref = "archive-busy"
    exit_code = 46
    default_hint = (
        "Another `center import`, `center check`, `center retention apply` or `center expiry "
        "purge --yes` is running on this archive: wait for it to finish and run the command "
        "again (the lock goes with the process that holds it)."
    )


# -- courier visits: facilities, DICOM nodes, drives, outbox ----------------------------------


class FacilityUnknown(ArchiveError):
    ref = "facility-unknown"
    exit_code = 13
    default_hint = (
        "Add it with `courier facility add ID --name NAME --source PATH`, or give --source "
        "for a one-off visit; `courier facility list` shows the configured ones."
    )


class FacilityExists(ArchiveError):
    ref = "facility-exists"
    exit_code = 14
    default_hint = "Pass --replace to overwrite its settings, or choose another id."


class DicomNodeUnreachable(SourceError):
    ref = "dicom-node-unreachable"
    exit_code = 15
    default_hint = (
        "Check that the clinic's PACS is switched on and that the host and port in the "
        "facility's source (dicom://AET@host:port) are right, then run the command again."
    )


class DicomWrongAETitle(SourceError):
    ref = "dicom-wrong-ae-title"
    exit_code = 16
    default_hint = (
        "The node does not answer to this AE title: ask the clinic for its PACS's AE title and "
        "fix the facility's source (`courier facility add ID --replace ...`)."
    )


class DicomAssociationRejected(SourceError):
    ref = "dicom-association-rejected"
    exit_code = 17
    default_hint = (
        "Ask the clinic to allow our AE title (the facility's calling_aet, COURIER by default) "
        "to query and retrieve on their PACS, then run the command again."
    )


class DicomTransferFailed(SourceError):
    ref = "dicom-transfer-failed"
    exit_code = 18
    default_hint = (
        "Run the pull again: what was received is kept and the pull resumes. If it fails again, "
        "report the status shown to the clinic's PACS administrator."
    )


class DriveNotFound(DriveError):
    ref = "drive-not-found"
    exit_code = 19
    default_hint = (
        "Insert and mount the courier drive (`courier drives` lists what is plugged in), or "
        "give its mount point with --drive PATH."
    )


class DriveAmbiguous(DriveError):
    ref = "drive-ambiguous"
    exit_code = 60
    default_hint = "Unplug the drives you do not mean to use, or name one with --drive PATH."


class OutboxDocumentRefused(ArchiveError):
    ref = "outbox-document-refused"
    exit_code = 61
    default_hint = (
        "A document in the drive's outbox is not validly signed by the center this laptop "
        "trusts: it was not given to the clinic. Keep the drive as it is and call the center."
    )


class BundleNotInJournal(ArchiveError):
    ref = "bundle-not-in-journal"
    exit_code = 62
    default_hint = (
        "Check the bundle id (`courier bundle list` shows the bundles this laptop made); a "
        "bundle made by another laptop can only be released on that laptop."
    )


class NothingToRelease(ArchiveError):
    ref = "nothing-to-release"
    exit_code = 63
    default_hint = (
        "The center's storage receipts confirm every instance of this bundle: nothing is lost "
        "and nothing needs to be carried again."
    )


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
    BundleManifestDamaged,
    BundleExtraFile,
    BundleWrongCenter,
    CourierLogInvalid,
    CourierLogForked,
    BundleIdReused,
    ArchiveFull,
    BundlePartial,
    ReceiptInvalid,
    AuditChainBroken,
    CheckFindings,
    ReceiptUnknown,
    ArchiveBusy,
    FacilityUnknown,
    FacilityExists,
    DicomNodeUnreachable,
    DicomWrongAETitle,
    DicomAssociationRejected,
    DicomTransferFailed,
    DriveNotFound,
    DriveAmbiguous,
    OutboxDocumentRefused,
    BundleNotInJournal,
    NothingToRelease,
)
