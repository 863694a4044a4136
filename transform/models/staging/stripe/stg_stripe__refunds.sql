-- Refunds without tombstones or personal columns, with exact amounts in major units (minor units / 10^exponent).
select
    refunds.id as refund_id,
    refunds.charge as charge_id,
    refunds.created as created_at,
    {{ reporting_date('refunds.created') }} as created_date,
    upper(refunds.currency) as currency,
    {{ scaled_to_decimal('refunds.amount', 'exponents.exponent') }} as amount,
    refunds.status,
    -- Pending refunds count, as Stripe has already deducted them. Failed and canceled ones returned nothing.
    coalesce(refunds.status not in ('failed', 'canceled'), true) as is_refund,
    refunds._loaded_at as loaded_at
from {{ source_or_empty('stripe', 'refunds') }} as refunds
left join {{ ref('currency_exponents') }} as exponents
    on exponents.currency = upper(refunds.currency)
where refunds._sdc_deleted_at is null
