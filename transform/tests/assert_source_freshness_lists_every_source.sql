-- source_freshness has a row for each of the five sources (accepted_values only rejects unknown ones).
select expected.source
from (
    values ('google_ads'), ('facebook'), ('google_analytics'), ('stripe'), ('magento')
) as expected (source)
anti join {{ ref('source_freshness') }} as freshness on freshness.source = expected.source
