"""Java: data-source configuration with an author Javadoc."""

from leakbench.data.templates import Template

TEMPLATES = (
    Template(
        name="java_datasource",
        language="java",
        path="src/main/java/com/example/DataSourceConfig.java",
        row="""package com.example.{{@db}};

import javax.sql.DataSource;
import org.springframework.boot.jdbc.DataSourceBuilder;

/**
 * Data source for the {{@app}} service.
 *
 * @author {{name}} ({{email}})
 */
public class DataSourceConfig {
    private static final String URL = "jdbc:postgresql://{{ip_address}}:{{@port}}/{{@db}}";
    private static final String USER = "{{username}}";
    private static final String PASSWORD = "{{password}}";

    public DataSource dataSource() {
        return DataSourceBuilder.create().url(URL).username(USER).password(PASSWORD).build();
    }
}
""",
    ),
)
