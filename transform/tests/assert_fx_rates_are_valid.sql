-- Every rate is positive, every code is three upper-case letters, and EUR is 1 on every date.
select rate_date, currency, per_eur
from {{ ref('fx_rates') }}
where per_eur <= 0
    or not regexp_full_match(currency, '[A-Z]{3}')
    or (currency = 'EUR' and per_eur <> 1)
