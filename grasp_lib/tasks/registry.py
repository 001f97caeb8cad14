"""The dataset registry: per dataset its task family, labels (a one-line definition each), unit and
usual metric."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TaskSpec:
    dataset: str
    family: str
    domain: str
    labels: dict[str, str]  # label -> one-line definition (entity types; relation labels for re/triples/nary)
    relation_labels: dict[str, str] = field(default_factory=dict)  # joint family: relation types
    unit: str = "sentence"  # the natural unit of an example (sentence | passage | document | instance)
    negative: str | None = None  # re: the label meaning "no relation" (left out of micro-F1), if any
    symmetric: frozenset[str] = frozenset()  # relation types without direction (either order is the same)
    metric: str = ""  # the field's usual reported form, one line

    @property
    def label_names(self) -> list[str]:
        return list(self.labels)

    def parse_args(self) -> tuple[tuple[str, ...], str, tuple[str, ...]]:
        """The arguments of parsing.parse for this task, after the completion."""
        return tuple(self.labels), self.family, tuple(self.relation_labels)


_CHEMPROT = {
    "INHIBITOR": "the chemical inhibits the protein",
    "INDIRECT-DOWNREGULATOR": "the chemical lowers the protein's level or activity indirectly",
    "INDIRECT-UPREGULATOR": "the chemical raises the protein's level or activity indirectly",
    "DOWNREGULATOR": "the chemical lowers the protein's activity directly",
    "UPREGULATOR": "the chemical raises the protein's activity directly",
    "ACTIVATOR": "the chemical activates the protein",
    "ANTAGONIST": "the chemical is an antagonist of the protein (receptor)",
    "AGONIST": "the chemical is an agonist of the protein (receptor)",
    "AGONIST-ACTIVATOR": "an agonist that activates the protein",
    "AGONIST-INHIBITOR": "an agonist that inhibits the protein",
    "SUBSTRATE": "the chemical is a substrate of the protein (enzyme, transporter)",
    "PRODUCT-OF": "the chemical is a product of the protein (enzyme)",
    "SUBSTRATE_PRODUCT-OF": "the chemical is both substrate and product of the protein",
}
_GENE_DISEASE = {"association": "the sentence asserts that the gene is associated with the disease",
                 "none": "no association between the gene and the disease is asserted"}
_SCIER_RELATIONS = {
    "Used-For": "head is used for tail", "Part-Of": "head is a part of tail",
    "Synonym-Of": "head and tail name the same thing", "Compare-With": "head is compared with tail",
    "Evaluated-With": "head is evaluated with tail (a dataset or metric)",
    "SubClass-Of": "head is a kind of tail", "Benchmark-For": "head (dataset) is a benchmark for tail (task)",
    "Trained-With": "head (method) is trained with tail (dataset)", "SubTask-Of": "head is a subtask of tail",
}

TASKS = {
    "bc5cdr": TaskSpec(
        dataset="bc5cdr", family="ner", domain="PubMed abstracts (BC5CDR)",
        labels={
            "Chemical": "drug or chemical, abbreviations too",
            "Disease": "disease, disorder, symptom or adverse effect",
        },
        metric="entity-level strict micro-F1",
    ),
    "bc5cdr-cid": TaskSpec(
        dataset="bc5cdr-cid", family="triples", domain="PubMed abstracts (BC5CDR)",
        labels={"CID": "the chemical induces the disease (chemical-induced disease)"},
        unit="document", metric="micro-F1 over [chemical, CID, disease] triples (mention texts, case-insensitive)",
    ),
    "ncbi-disease": TaskSpec(
        dataset="ncbi-disease", family="ner", domain="PubMed abstracts (NCBI-disease)",
        labels={
            "SpecificDisease": "a specific disease, e.g. cystic fibrosis",
            "DiseaseClass": "a class of diseases, e.g. cancers",
            "Modifier": "a disease word modifying another noun, e.g. the DM1 gene",
            "CompositeMention": "several diseases in one phrase, e.g. breast and ovarian cancer",
        },
        metric="entity-level strict micro-F1 (also type-agnostic 'exact', the usual single-type Disease F1)",
    ),
    "bc2gm": TaskSpec(
        dataset="bc2gm", family="ner", domain="MEDLINE sentences (BioCreative II)",
        labels={"GENE": "gene or gene product (protein, RNA), as a name or symbol"},
        metric="entity-level strict micro-F1, ALTGENE boundaries accepted as alternatives",
    ),
    "jnlpba": TaskSpec(
        dataset="jnlpba", family="ner", domain="MEDLINE abstracts (GENIA, JNLPBA)",
        labels={
            "protein": "protein, protein family or complex",
            "DNA": "gene, DNA region or sequence",
            "RNA": "RNA molecule or transcript",
            "cell_type": "natural cell type",
            "cell_line": "cultured cell line",
        },
        metric="entity-level strict micro-F1",
    ),
    "ddi-ner": TaskSpec(
        dataset="ddi-ner", family="ner", domain="drug labels and MEDLINE abstracts (DDI-2013)",
        labels={
            "drug": "generic drug name approved for human use",
            "brand": "brand (trade) name of a drug",
            "group": "group or class of drugs",
            "drug_n": "active substance not approved for human use",
        },
        metric="entity-level strict micro-F1",
    ),
    "chemprot": TaskSpec(
        dataset="chemprot", family="re", domain="PubMed abstracts (ChemProt)",
        labels=_CHEMPROT, unit="instance",
        metric="micro-F1 over the positive classes (every instance is positive in this version)",
    ),
    "ddi": TaskSpec(
        dataset="ddi", family="re", domain="drug labels and MEDLINE abstracts (DDI-2013)",
        labels={
            "mechanism": "a pharmacokinetic interaction (absorption, metabolism, levels)",
            "effect": "an interaction stated by its effect or pharmacodynamic mechanism",
            "advise": "a recommendation or advice about using the two drugs together",
            "int": "an interaction is stated without further information",
            "none": "no interaction between the two drugs is stated",
        },
        unit="instance", negative="none", metric="micro-F1 over mechanism, effect, advise, int",
    ),
    "gad": TaskSpec(
        dataset="gad", family="re", domain="PubMed sentences (GAD)", labels=_GENE_DISEASE,
        unit="instance", negative="none", metric="binary F1 of the positive class (association)",
    ),
    "euadr": TaskSpec(
        dataset="euadr", family="re", domain="PubMed sentences (EU-ADR)", labels=_GENE_DISEASE,
        unit="instance", negative="none", metric="binary F1 of the positive class (association)",
    ),
    "drugcomb": TaskSpec(
        dataset="drugcomb", family="nary", domain="PubMed sentences on drug combinations",
        labels={
            "POS": "the drugs are given together with a positive (beneficial, synergistic) effect",
            "COMB": "the drugs are given together; effect not stated or unclear",
            "NEG": "the drugs are given together with a negative (adverse, antagonistic) effect",
        },
        metric="F1 exact and partial, POS vs other and any combination (Tiktinsky et al.)",
    ),
    "scier": TaskSpec(
        dataset="scier", family="joint", domain="machine learning papers (SciER)",
        labels={"Method": "method, model, algorithm or architecture",
                "Task": "task or problem addressed", "Dataset": "dataset or benchmark"},
        relation_labels=_SCIER_RELATIONS, symmetric=frozenset({"Synonym-Of", "Compare-With"}),
        metric="entity strict micro-F1 and relation micro-F1 (exact head, type, tail; Synonym-Of and "
               "Compare-With in either order)",
    ),
    "biorlhf": TaskSpec(
        dataset="biorlhf", family="qa", domain="KMP spaceflight transcriptomics (BioRLHF)",
        labels={"answer": "a short factual answer"}, unit="instance",
        metric="exact match and token F1 of the answer",
    ),
}


def label_lines(spec: TaskSpec) -> dict[str, str]:
    """Every label of a task with its definition (joint: entity types, then relation types)."""
    return dict(spec.labels) | dict(spec.relation_labels)


def get_task(dataset: str) -> TaskSpec:
    if dataset not in TASKS:
        raise KeyError(f"no task registered for dataset {dataset!r}; known: {sorted(TASKS)}")
    return TASKS[dataset]
