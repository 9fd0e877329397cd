-- Creates the warehouse database beside Airflow's metadata database (docker-compose).
CREATE DATABASE warehouse OWNER airflow;
