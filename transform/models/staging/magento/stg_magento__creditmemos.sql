-- Credit memos (refunds), with totals in the store's base currency.
select
    entity_id as creditmemo_id,
    order_id,
    state,
    store_id,
    created_at,
    {{ reporting_date('created_at') }} as created_date,
    upper(base_currency_code) as currency,
    cast(base_grand_total as decimal(38, 9)) as grand_total,
    -- Magento's credit memo states are 1 open, 2 refunded and 3 canceled, and a canceled memo refunded nothing.
    state is distinct from 3 as is_refund,
    _loaded_at as loaded_at
from {{ source_or_empty('magento', 'creditmemos') }}
