"""PassKit REST client, Airflow hook and the local PassKit sandbox."""
