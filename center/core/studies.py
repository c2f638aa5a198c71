"""Study-level views of the catalog."""

from __future__ import annotations

import json
from dataclasses import dataclass

from center.core.archive import Archive


@dataclass(frozen=True)
class StudyRow:
    facility_id: str
    accession: str
    study_date: str
    modalities: str
    instances: int
    bytes: int
    expiry: str
    expiry_rule: str


def studies_of_bundles(archive: Archive, bundle_ids: list[str]) -> list[StudyRow]:
    """The studies that instances of *bundle_ids* belong to, with their expiry dates."""
    if not bundle_ids:
        return []
    rows = archive.conn.execute(
        "SELECT st.facility_id, st.accession, st.study_date, st.modalities, "
        "COUNT(i.instance_pk), COALESCE(SUM(i.size), 0), st.expiry, st.expiry_rule "
        "FROM studies st JOIN series se USING (study_pk) JOIN instances i USING (series_pk) "
        "WHERE st.study_pk IN (SELECT se2.study_pk FROM series se2 JOIN instances i2 "
        "USING (series_pk) WHERE i2.bundle_id IN (SELECT value FROM json_each(?))) "
        "GROUP BY st.study_pk ORDER BY st.facility_id, st.study_date, st.accession",
        (json.dumps(bundle_ids),),
    )
    return [StudyRow(*row) for row in rows]
