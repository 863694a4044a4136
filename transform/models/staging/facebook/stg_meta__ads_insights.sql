{#-
    Ad-level daily insights. `actions` and `action_values` are JSON lists of {action_type, value}.
    Purchases come from the first purchase action type present, in the order below.
-#}
{%- set purchase_action_types = ['offsite_conversion.fb_pixel_purchase', 'purchase', 'omni_purchase'] -%}
{%- set action_list_type = '[{"action_type": "VARCHAR", "value": "DOUBLE"}]' -%}

with parsed as (
    select
        *,
        from_json(actions, '{{ action_list_type }}') as action_list,
        from_json(action_values, '{{ action_list_type }}') as action_value_list
    from {{ source_or_empty('facebook', 'ads_insights') }}
)

select
    account_id,
    campaign_id,
    campaign_name,
    ad_id,
    date_start as date,
    upper(account_currency) as currency,
    cast(coalesce(spend, 0) as decimal(38, 9)) as spend,
    impressions,
    clicks,
    {{ meta_first_action_value('action_list', purchase_action_types) }} as purchases,
    cast({{ meta_first_action_value('action_value_list', purchase_action_types) }} as decimal(38, 9)) as purchase_value,
    _loaded_at as loaded_at
from parsed
