{#- Fails with one row per combination of `columns` that occurs more than once in the model. -#}
{% test unique_key(model, columns) %}

select {{ columns | join(', ') }}, count(*) as occurrences
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1

{% endtest %}
