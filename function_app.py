"""The Functions app: wires the blueprints of ``functions/`` and nothing else."""

import azure.functions as func

from functions import (
    full_sync,
    http_health,
    http_jobs,
    http_mappings,
    http_records,
    order_followup,
    sales_documents,
    sync_triggers,
    webhooks,
)
from functions import invoices as bc_to_sales_invoices
from shared.config import get_settings

# Fail at start, naming every missing or invalid setting, rather than at the first request.
get_settings()

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
for blueprint in (http_health, http_mappings, http_records, http_jobs, full_sync, sync_triggers, webhooks):
    app.register_functions(blueprint.bp)
app.register_functions(sales_documents.bp)
app.register_functions(bc_to_sales_invoices.bp)
app.register_functions(order_followup.bp)
