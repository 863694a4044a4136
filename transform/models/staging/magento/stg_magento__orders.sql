-- Orders without personal columns, with totals in the store's base currency.
select
    entity_id as order_id,
    increment_id,
    state,
    status,
    store_id,
    created_at,
    {{ reporting_date('created_at') }} as created_date,
    upper(base_currency_code) as currency,
    cast(base_grand_total as decimal(38, 9)) as grand_total,
    -- Canceled orders are no revenue.
    state is distinct from 'canceled' as is_revenue,
    _loaded_at as loaded_at
from {{ source_or_empty('magento', 'orders') }}
