DATABASE_URL = "postgresql://{{ db_user }}:{{ db_password }}@db/app"
{% if debug %}
ECHO = True
{% endif %}
