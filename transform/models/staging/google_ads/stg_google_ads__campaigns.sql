select
    cast(customer_id as varchar) as account_id,
    cast(campaign_id as varchar) as campaign_id,
    name as campaign_name,
    status,
    advertising_channel_type,
    _loaded_at as loaded_at
from {{ source_or_empty('google_ads', 'campaigns') }}
