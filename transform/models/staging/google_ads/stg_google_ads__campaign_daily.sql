-- Daily campaign metrics, with money in exact major units of the account currency (cost_micros / 1e6).
select
    cast(customer_id as varchar) as account_id,
    cast(campaign_id as varchar) as campaign_id,
    date,
    upper(currency_code) as currency,
    impressions,
    clicks,
    -- A metric the API leaves out is zero.
    {{ scaled_to_decimal('coalesce(cost_micros, 0)', 6) }} as spend,
    coalesce(conversions, 0) as conversions,
    cast(coalesce(conversions_value, 0) as decimal(38, 9)) as conversion_value,
    _loaded_at as loaded_at
from {{ source_or_empty('google_ads', 'campaign_daily_metrics') }}
