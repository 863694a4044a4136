{#- Fails unless the model has exactly one row; returns the row count otherwise. -#}
{% test single_row(model) %}

select count(*) as row_count
from {{ model }}
having count(*) <> 1

{% endtest %}
