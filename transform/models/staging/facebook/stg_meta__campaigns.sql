select
    id as campaign_id,
    account_id,
    name as campaign_name,
    status,
    _loaded_at as loaded_at
from {{ source_or_empty('facebook', 'campaigns') }}
