-- Charges without tombstones or personal columns, with exact amounts in major units (minor units / 10^exponent).
select
    charges.id as charge_id,
    charges.created as created_at,
    {{ reporting_date('charges.created') }} as created_date,
    upper(charges.currency) as currency,
    {{ scaled_to_decimal('charges.amount', 'exponents.exponent') }} as amount,
    {{ scaled_to_decimal('charges.amount_captured', 'exponents.exponent') }} as amount_captured,
    {{ scaled_to_decimal('charges.amount_refunded', 'exponents.exponent') }} as amount_refunded,
    charges.status,
    charges.paid as is_paid,
    charges.refunded as is_refunded,
    -- Failed and pending charges are no revenue.
    coalesce(charges.status = 'succeeded', false) as is_revenue,
    charges.utm_source,
    charges.utm_medium,
    charges.utm_campaign,
    charges._loaded_at as loaded_at
from {{ source_or_empty('stripe', 'charges') }} as charges
left join {{ ref('currency_exponents') }} as exponents
    on exponents.currency = upper(charges.currency)
where charges._sdc_deleted_at is null
