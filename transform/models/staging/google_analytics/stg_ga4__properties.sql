select
    cast(property_id as varchar) as property_id,
    upper(currency_code) as currency,
    time_zone,
    _loaded_at as loaded_at
from {{ source_or_empty('google_analytics', 'properties') }}
