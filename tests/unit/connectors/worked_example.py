"""The worked example of functions/connectors/README.md: a ``crm`` connector that looks up a
vendor. The README shows this file verbatim (a test compares them) and
``test_worked_example.py`` runs it. Adding the connector for real puts each part where its
comment says: three files."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from aios.connectors.kit import Connector, ConnectorRequest, ConnectorResult, parse_body
from infrastructure.platform.connectors import connector_function


# -- 1. layers/aios/python/aios/connectors/catalog/crm.py ---------------------------------
class GetVendor(ConnectorRequest):
    operation: Literal["get_vendor"]
    vendor_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,64}$")]


class VendorBody(ConnectorRequest):  # what the CRM answers (the part we rely on)
    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    display_name: str


class VendorResult(ConnectorResult):
    vendor_id: str
    vendor_name: str


class CrmConnector(Connector):
    """CRM connector: vendor lookups (``GET /vendors/{id}``)."""

    name = "crm"
    version = "1.0.0"  # bump whenever the mapping changes: lineage records it

    def get_vendor(self, request: GetVendor) -> VendorResult:
        body = self.call(request.operation, "GET", f"/vendors/{request.vendor_id}")
        vendor = parse_body(VendorBody, body, self.context(request.operation))
        return VendorResult(
            **self.result(request.operation), vendor_id=vendor.id, vendor_name=vendor.display_name
        )


# -- 2. functions/connectors/crm/handler.py -----------------------------------------------
handler = CrmConnector.lambda_handler()

# -- 3. infrastructure/platform/connectors.py ---------------------------------------------
CRM_CONNECTOR = connector_function(CrmConnector, description="CRM connector: vendor lookups.")
