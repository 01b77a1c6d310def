//! A built-in reference list of common territorial métiers, for pickers: each with its
//! ROME 4.0 fiche code (France Travail, open licence; domain.md §2.3), the filière and the
//! usual catégories and cadres d'emplois. Labels are our own usual names; CNFPT labels are
//! informative only and not reproduced (licence unclear, domain.md §2.2).
//!
//! The ROME codes were assigned from the ROME fiche list (letter A–N and 4 digits); check
//! them against the France Travail dataset when it is next updated.

use passerelle_protocol::vocab::{Categorie, Filiere, LocalMetierRef, MetierRef, RomeRef};

use super::fold;

/// One métier of the reference list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metier {
    /// Usual label (French).
    pub label: &'static str,
    /// ROME fiche code, e.g. `K1404`.
    pub rome: &'static str,
    /// Label of the ROME fiche.
    pub rome_label: &'static str,
    /// Filière.
    pub filiere: Filiere,
    /// Catégories in which it is usually held.
    pub categories: &'static [Categorie],
    /// Typical cadres d'emplois.
    pub cadres_emplois: &'static [&'static str],
    /// Other names searched too.
    pub synonyms: &'static [&'static str],
}

impl Metier {
    /// The protocol reference: the ROME code (version 4.0) and the usual label as local
    /// label.
    pub fn metier_ref(&self) -> MetierRef {
        MetierRef {
            rome: Some(RomeRef {
                code: self.rome.to_owned(),
                label: Some(self.rome_label.to_owned()),
                version: Some("4.0".to_owned()),
            }),
            cnfpt: None,
            local: Some(LocalMetierRef {
                label: self.label.to_owned(),
                id: None,
            }),
            extra: Default::default(),
        }
    }
}

/// The reference list.
pub const METIERS: &[Metier] = &[
    Metier {
        label: "Secrétaire de mairie",
        rome: "K1404",
        rome_label: "Mise en œuvre et pilotage de la politique des pouvoirs publics",
        filiere: Filiere::Administrative,
        categories: &[Categorie::A, Categorie::B, Categorie::C],
        cadres_emplois: &[
            "attachés territoriaux",
            "rédacteurs territoriaux",
            "adjoints administratifs territoriaux",
        ],
        synonyms: &[
            "secrétaire général de mairie",
            "secrétaire générale de mairie",
        ],
    },
    Metier {
        label: "Agent d'accueil",
        rome: "M1601",
        rome_label: "Accueil et renseignements",
        filiere: Filiere::Administrative,
        categories: &[Categorie::C],
        cadres_emplois: &["adjoints administratifs territoriaux"],
        synonyms: &["agente d'accueil", "chargé d'accueil", "hôte d'accueil"],
    },
    Metier {
        label: "Gestionnaire RH (carrière et paie)",
        rome: "M1501",
        rome_label: "Assistanat en ressources humaines",
        filiere: Filiere::Administrative,
        categories: &[Categorie::C, Categorie::B],
        cadres_emplois: &[
            "adjoints administratifs territoriaux",
            "rédacteurs territoriaux",
        ],
        synonyms: &[
            "gestionnaire ressources humaines",
            "gestionnaire paie",
            "gestionnaire carrière",
        ],
    },
    Metier {
        label: "Chargé(e) de mission mobilités et parcours professionnels",
        rome: "M1502",
        rome_label: "Développement des ressources humaines",
        filiere: Filiere::Administrative,
        categories: &[Categorie::A, Categorie::B],
        cadres_emplois: &["attachés territoriaux", "rédacteurs territoriaux"],
        synonyms: &[
            "conseiller mobilité carrière",
            "conseillère mobilité carrière",
            "chargé de mobilité",
        ],
    },
    Metier {
        label: "Chargé(e) de recrutement",
        rome: "M1502",
        rome_label: "Développement des ressources humaines",
        filiere: Filiere::Administrative,
        categories: &[Categorie::A, Categorie::B],
        cadres_emplois: &["attachés territoriaux", "rédacteurs territoriaux"],
        synonyms: &[],
    },
    Metier {
        label: "Chargé(e) de formation",
        rome: "K2101",
        rome_label: "Conseil en formation",
        filiere: Filiere::Administrative,
        categories: &[Categorie::A, Categorie::B],
        cadres_emplois: &["attachés territoriaux", "rédacteurs territoriaux"],
        synonyms: &["responsable formation"],
    },
    Metier {
        label: "Formateur(trice) interne",
        rome: "K2111",
        rome_label: "Formation professionnelle",
        filiere: Filiere::Administrative,
        categories: &[Categorie::A, Categorie::B, Categorie::C],
        cadres_emplois: &[
            "attachés territoriaux",
            "rédacteurs territoriaux",
            "techniciens territoriaux",
        ],
        synonyms: &["formateur occasionnel"],
    },
    Metier {
        label: "Directeur(trice) des ressources humaines",
        rome: "M1503",
        rome_label: "Management des ressources humaines",
        filiere: Filiere::Administrative,
        categories: &[Categorie::A],
        cadres_emplois: &["attachés territoriaux", "administrateurs territoriaux"],
        synonyms: &["DRH", "responsable RH"],
    },
    Metier {
        label: "Directeur(trice) général(e) des services",
        rome: "K1401",
        rome_label: "Conception et pilotage de la politique des pouvoirs publics",
        filiere: Filiere::Administrative,
        categories: &[Categorie::A],
        cadres_emplois: &[
            "administrateurs territoriaux",
            "attachés territoriaux",
            "ingénieurs en chef territoriaux",
        ],
        synonyms: &["DGS", "directeur général adjoint", "DGA"],
    },
    Metier {
        label: "Chargé(e) de mission politiques publiques",
        rome: "K1404",
        rome_label: "Mise en œuvre et pilotage de la politique des pouvoirs publics",
        filiere: Filiere::Administrative,
        categories: &[Categorie::A],
        cadres_emplois: &["attachés territoriaux"],
        synonyms: &["chargé de mission", "chef de projet"],
    },
    Metier {
        label: "Chargé(e) de développement économique",
        rome: "K1802",
        rome_label: "Développement local",
        filiere: Filiere::Administrative,
        categories: &[Categorie::A],
        cadres_emplois: &["attachés territoriaux"],
        synonyms: &["développeur économique"],
    },
    Metier {
        label: "Chef(fe) de projet politique de la ville",
        rome: "K1802",
        rome_label: "Développement local",
        filiere: Filiere::Administrative,
        categories: &[Categorie::A],
        cadres_emplois: &["attachés territoriaux"],
        synonyms: &["chargé de mission politique de la ville"],
    },
    Metier {
        label: "Gestionnaire comptable",
        rome: "M1203",
        rome_label: "Comptabilité",
        filiere: Filiere::Administrative,
        categories: &[Categorie::C, Categorie::B],
        cadres_emplois: &[
            "adjoints administratifs territoriaux",
            "rédacteurs territoriaux",
        ],
        synonyms: &["agent comptable", "comptable"],
    },
    Metier {
        label: "Responsable des finances",
        rome: "M1205",
        rome_label: "Direction administrative et financière",
        filiere: Filiere::Administrative,
        categories: &[Categorie::A],
        cadres_emplois: &["attachés territoriaux"],
        synonyms: &["directeur financier", "responsable budget"],
    },
    Metier {
        label: "Contrôleur(se) de gestion",
        rome: "M1204",
        rome_label: "Contrôle de gestion",
        filiere: Filiere::Administrative,
        categories: &[Categorie::A],
        cadres_emplois: &["attachés territoriaux"],
        synonyms: &[],
    },
    Metier {
        label: "Acheteur(se) public(que)",
        rome: "M1101",
        rome_label: "Achats",
        filiere: Filiere::Administrative,
        categories: &[Categorie::A, Categorie::B],
        cadres_emplois: &["attachés territoriaux", "rédacteurs territoriaux"],
        synonyms: &[
            "gestionnaire des marchés publics",
            "chargé de la commande publique",
        ],
    },
    Metier {
        label: "Juriste",
        rome: "K1903",
        rome_label: "Défense et conseil juridique",
        filiere: Filiere::Administrative,
        categories: &[Categorie::A],
        cadres_emplois: &["attachés territoriaux"],
        synonyms: &["conseiller juridique"],
    },
    Metier {
        label: "Assistant(e) de direction",
        rome: "M1604",
        rome_label: "Assistanat de direction",
        filiere: Filiere::Administrative,
        categories: &[Categorie::C, Categorie::B],
        cadres_emplois: &[
            "adjoints administratifs territoriaux",
            "rédacteurs territoriaux",
        ],
        synonyms: &[],
    },
    Metier {
        label: "Secrétaire administratif(ve)",
        rome: "M1607",
        rome_label: "Secrétariat",
        filiere: Filiere::Administrative,
        categories: &[Categorie::C],
        cadres_emplois: &["adjoints administratifs territoriaux"],
        synonyms: &["assistant administratif", "assistante administrative"],
    },
    Metier {
        label: "Agent d'état civil et des formalités administratives",
        rome: "M1602",
        rome_label: "Opérations administratives",
        filiere: Filiere::Administrative,
        categories: &[Categorie::C, Categorie::B],
        cadres_emplois: &[
            "adjoints administratifs territoriaux",
            "rédacteurs territoriaux",
        ],
        synonyms: &["officier d'état civil", "agent administratif"],
    },
    Metier {
        label: "Chargé(e) de communication",
        rome: "E1103",
        rome_label: "Communication",
        filiere: Filiere::Administrative,
        categories: &[Categorie::A, Categorie::B],
        cadres_emplois: &["attachés territoriaux", "rédacteurs territoriaux"],
        synonyms: &["responsable communication"],
    },
    Metier {
        label: "Chargé(e) d'études et d'observation",
        rome: "M1403",
        rome_label: "Études et prospectives socio-économiques",
        filiere: Filiere::Administrative,
        categories: &[Categorie::A],
        cadres_emplois: &["attachés territoriaux"],
        synonyms: &["chargé d'études"],
    },
    Metier {
        label: "Agent de surveillance de la voie publique (ASVP)",
        rome: "K1707",
        rome_label: "Surveillance municipale",
        filiere: Filiere::Administrative,
        categories: &[Categorie::C],
        cadres_emplois: &[
            "adjoints administratifs territoriaux",
            "adjoints techniques territoriaux",
        ],
        synonyms: &["ASVP"],
    },
    Metier {
        label: "Administrateur(trice) systèmes et réseaux",
        rome: "M1801",
        rome_label: "Administration de systèmes d'information",
        filiere: Filiere::Technique,
        categories: &[Categorie::A, Categorie::B],
        cadres_emplois: &["ingénieurs territoriaux", "techniciens territoriaux"],
        synonyms: &["administrateur réseau"],
    },
    Metier {
        label: "Technicien(ne) support informatique",
        rome: "I1401",
        rome_label: "Maintenance informatique et bureautique",
        filiere: Filiere::Technique,
        categories: &[Categorie::B, Categorie::C],
        cadres_emplois: &[
            "techniciens territoriaux",
            "adjoints techniques territoriaux",
        ],
        synonyms: &["technicien informatique", "support utilisateurs"],
    },
    Metier {
        label: "Chef(fe) de projet systèmes d'information",
        rome: "M1806",
        rome_label: "Conseil et maîtrise d'ouvrage en systèmes d'information",
        filiere: Filiere::Technique,
        categories: &[Categorie::A],
        cadres_emplois: &["ingénieurs territoriaux"],
        synonyms: &["chef de projet informatique"],
    },
    Metier {
        label: "Agent d'entretien des espaces verts",
        rome: "A1203",
        rome_label: "Aménagement et entretien des espaces verts",
        filiere: Filiere::Technique,
        categories: &[Categorie::C],
        cadres_emplois: &[
            "adjoints techniques territoriaux",
            "agents de maîtrise territoriaux",
        ],
        synonyms: &["jardinier", "agent des espaces verts"],
    },
    Metier {
        label: "Technicien(ne) voirie et réseaux divers",
        rome: "F1106",
        rome_label: "Ingénierie et études du BTP",
        filiere: Filiere::Technique,
        categories: &[Categorie::B],
        cadres_emplois: &["techniciens territoriaux"],
        synonyms: &["technicien VRD", "technicien voirie"],
    },
    Metier {
        label: "Agent de voirie",
        rome: "F1702",
        rome_label: "Construction de routes et voies",
        filiere: Filiere::Technique,
        categories: &[Categorie::C],
        cadres_emplois: &[
            "adjoints techniques territoriaux",
            "agents de maîtrise territoriaux",
        ],
        synonyms: &["agent d'exploitation des routes", "cantonnier"],
    },
    Metier {
        label: "Ingénieur(e) bâtiment et travaux",
        rome: "F1106",
        rome_label: "Ingénierie et études du BTP",
        filiere: Filiere::Technique,
        categories: &[Categorie::A],
        cadres_emplois: &["ingénieurs territoriaux"],
        synonyms: &["ingénieur travaux"],
    },
    Metier {
        label: "Conducteur(trice) de travaux",
        rome: "F1201",
        rome_label: "Conduite de travaux du BTP",
        filiere: Filiere::Technique,
        categories: &[Categorie::B, Categorie::A],
        cadres_emplois: &["techniciens territoriaux", "ingénieurs territoriaux"],
        synonyms: &["conducteur d'opérations"],
    },
    Metier {
        label: "Agent de maintenance des bâtiments",
        rome: "I1203",
        rome_label: "Maintenance des bâtiments et des locaux",
        filiere: Filiere::Technique,
        categories: &[Categorie::C],
        cadres_emplois: &[
            "adjoints techniques territoriaux",
            "agents de maîtrise territoriaux",
        ],
        synonyms: &["agent polyvalent des bâtiments"],
    },
    Metier {
        label: "Électricien(ne) du bâtiment",
        rome: "F1602",
        rome_label: "Électricité bâtiment",
        filiere: Filiere::Technique,
        categories: &[Categorie::C],
        cadres_emplois: &["adjoints techniques territoriaux"],
        synonyms: &[],
    },
    Metier {
        label: "Plombier(ère) chauffagiste",
        rome: "F1603",
        rome_label: "Installation d'équipements sanitaires et thermiques",
        filiere: Filiere::Technique,
        categories: &[Categorie::C],
        cadres_emplois: &["adjoints techniques territoriaux"],
        synonyms: &["plombier"],
    },
    Metier {
        label: "Peintre en bâtiment",
        rome: "F1606",
        rome_label: "Peinture en bâtiment",
        filiere: Filiere::Technique,
        categories: &[Categorie::C],
        cadres_emplois: &["adjoints techniques territoriaux"],
        synonyms: &[],
    },
    Metier {
        label: "Agent de propreté urbaine",
        rome: "K2303",
        rome_label: "Nettoyage des espaces urbains",
        filiere: Filiere::Technique,
        categories: &[Categorie::C],
        cadres_emplois: &["adjoints techniques territoriaux"],
        synonyms: &["agent de propreté"],
    },
    Metier {
        label: "Agent de collecte des déchets",
        rome: "K2303",
        rome_label: "Nettoyage des espaces urbains",
        filiere: Filiere::Technique,
        categories: &[Categorie::C],
        cadres_emplois: &["adjoints techniques territoriaux"],
        synonyms: &["ripeur", "équipier de collecte"],
    },
    Metier {
        label: "Agent d'entretien des locaux",
        rome: "K2204",
        rome_label: "Nettoyage de locaux",
        filiere: Filiere::Technique,
        categories: &[Categorie::C],
        cadres_emplois: &["adjoints techniques territoriaux"],
        synonyms: &["agent d'entretien", "agent de service"],
    },
    Metier {
        label: "Cuisinier(ère) en restauration collective",
        rome: "G1602",
        rome_label: "Personnel de cuisine",
        filiere: Filiere::Technique,
        categories: &[Categorie::C],
        cadres_emplois: &[
            "adjoints techniques territoriaux",
            "agents de maîtrise territoriaux",
        ],
        synonyms: &["agent de restauration", "cuisinier"],
    },
    Metier {
        label: "Mécanicien(ne) des véhicules",
        rome: "I1604",
        rome_label: "Mécanique automobile et entretien de véhicules",
        filiere: Filiere::Technique,
        categories: &[Categorie::C],
        cadres_emplois: &["adjoints techniques territoriaux"],
        synonyms: &["mécanicien"],
    },
    Metier {
        label: "Magasinier(ère)",
        rome: "N1103",
        rome_label: "Magasinage et préparation de commandes",
        filiere: Filiere::Technique,
        categories: &[Categorie::C],
        cadres_emplois: &["adjoints techniques territoriaux"],
        synonyms: &[],
    },
    Metier {
        label: "Agent des réseaux d'eau et d'assainissement",
        rome: "K2301",
        rome_label: "Distribution et assainissement d'eau",
        filiere: Filiere::Technique,
        categories: &[Categorie::C, Categorie::B],
        cadres_emplois: &[
            "adjoints techniques territoriaux",
            "techniciens territoriaux",
        ],
        synonyms: &["fontainier", "agent d'assainissement"],
    },
    Metier {
        label: "Conseiller(ère) en prévention des risques professionnels",
        rome: "H1302",
        rome_label: "Management et ingénierie Hygiène Sécurité Environnement (HSE) industriels",
        filiere: Filiere::Technique,
        categories: &[Categorie::B, Categorie::A],
        cadres_emplois: &["techniciens territoriaux", "ingénieurs territoriaux"],
        synonyms: &["conseiller prévention", "préventeur"],
    },
    Metier {
        label: "Gardien(ne) d'équipement",
        rome: "K2501",
        rome_label: "Gardiennage de locaux",
        filiere: Filiere::Technique,
        categories: &[Categorie::C],
        cadres_emplois: &["adjoints techniques territoriaux"],
        synonyms: &["gardien de gymnase", "concierge"],
    },
    Metier {
        label: "Agent funéraire et de cimetière",
        rome: "K2601",
        rome_label: "Conduite d'opérations funéraires",
        filiere: Filiere::Technique,
        categories: &[Categorie::C],
        cadres_emplois: &["adjoints techniques territoriaux"],
        synonyms: &["fossoyeur", "agent de cimetière"],
    },
    Metier {
        label: "Bibliothécaire",
        rome: "K1601",
        rome_label: "Gestion de l'information et de la documentation",
        filiere: Filiere::Culturelle,
        categories: &[Categorie::A, Categorie::B],
        cadres_emplois: &[
            "bibliothécaires territoriaux",
            "assistants territoriaux de conservation du patrimoine et des bibliothèques",
        ],
        synonyms: &["responsable de médiathèque"],
    },
    Metier {
        label: "Agent de bibliothèque",
        rome: "K1601",
        rome_label: "Gestion de l'information et de la documentation",
        filiere: Filiere::Culturelle,
        categories: &[Categorie::C],
        cadres_emplois: &["adjoints territoriaux du patrimoine"],
        synonyms: &["agent de médiathèque"],
    },
    Metier {
        label: "Archiviste",
        rome: "K1601",
        rome_label: "Gestion de l'information et de la documentation",
        filiere: Filiere::Culturelle,
        categories: &[Categorie::A, Categorie::B],
        cadres_emplois: &[
            "attachés territoriaux de conservation du patrimoine",
            "assistants territoriaux de conservation du patrimoine et des bibliothèques",
        ],
        synonyms: &[],
    },
    Metier {
        label: "Documentaliste",
        rome: "K1601",
        rome_label: "Gestion de l'information et de la documentation",
        filiere: Filiere::Culturelle,
        categories: &[Categorie::B],
        cadres_emplois: &[
            "assistants territoriaux de conservation du patrimoine et des bibliothèques",
        ],
        synonyms: &[],
    },
    Metier {
        label: "Conservateur(trice) du patrimoine",
        rome: "K1602",
        rome_label: "Gestion de patrimoine culturel",
        filiere: Filiere::Culturelle,
        categories: &[Categorie::A],
        cadres_emplois: &["conservateurs territoriaux du patrimoine"],
        synonyms: &["responsable de musée"],
    },
    Metier {
        label: "Professeur(e) d'enseignement artistique",
        rome: "K2105",
        rome_label: "Enseignement artistique",
        filiere: Filiere::Culturelle,
        categories: &[Categorie::A, Categorie::B],
        cadres_emplois: &[
            "professeurs territoriaux d'enseignement artistique",
            "assistants territoriaux d'enseignement artistique",
        ],
        synonyms: &["professeur de conservatoire", "enseignant artistique"],
    },
    Metier {
        label: "Éducateur(trice) des activités physiques et sportives",
        rome: "G1204",
        rome_label: "Éducation en activités sportives",
        filiere: Filiere::Sportive,
        categories: &[Categorie::B],
        cadres_emplois: &["éducateurs territoriaux des activités physiques et sportives"],
        synonyms: &["ETAPS", "éducateur sportif", "éducateur des APS"],
    },
    Metier {
        label: "Maître-nageur sauveteur",
        rome: "G1204",
        rome_label: "Éducation en activités sportives",
        filiere: Filiere::Sportive,
        categories: &[Categorie::B],
        cadres_emplois: &["éducateurs territoriaux des activités physiques et sportives"],
        synonyms: &["MNS", "surveillant de baignade"],
    },
    Metier {
        label: "Opérateur(trice) des activités physiques et sportives",
        rome: "G1204",
        rome_label: "Éducation en activités sportives",
        filiere: Filiere::Sportive,
        categories: &[Categorie::C],
        cadres_emplois: &["opérateurs territoriaux des activités physiques et sportives"],
        synonyms: &["opérateur des APS"],
    },
    Metier {
        label: "Animateur(trice) enfance-jeunesse",
        rome: "G1203",
        rome_label: "Animation de loisirs auprès d'enfants ou d'adolescents",
        filiere: Filiere::Animation,
        categories: &[Categorie::C, Categorie::B],
        cadres_emplois: &[
            "adjoints territoriaux d'animation",
            "animateurs territoriaux",
        ],
        synonyms: &["animateur périscolaire", "animateur"],
    },
    Metier {
        label: "Directeur(trice) d'accueil collectif de mineurs",
        rome: "G1203",
        rome_label: "Animation de loisirs auprès d'enfants ou d'adolescents",
        filiere: Filiere::Animation,
        categories: &[Categorie::B],
        cadres_emplois: &["animateurs territoriaux"],
        synonyms: &["directeur de centre de loisirs", "directeur ACM"],
    },
    Metier {
        label: "Animateur(trice) socioculturel(le)",
        rome: "K1206",
        rome_label: "Intervention socioculturelle",
        filiere: Filiere::Animation,
        categories: &[Categorie::B],
        cadres_emplois: &["animateurs territoriaux"],
        synonyms: &["animateur de quartier"],
    },
    Metier {
        label: "Travailleur(se) social(e)",
        rome: "K1201",
        rome_label: "Action sociale",
        filiere: Filiere::Sociale,
        categories: &[Categorie::A],
        cadres_emplois: &["assistants territoriaux socio-éducatifs"],
        synonyms: &["assistant de service social", "assistante sociale"],
    },
    Metier {
        label: "Conseiller(ère) en économie sociale et familiale",
        rome: "K1201",
        rome_label: "Action sociale",
        filiere: Filiere::Sociale,
        categories: &[Categorie::A],
        cadres_emplois: &["assistants territoriaux socio-éducatifs"],
        synonyms: &["CESF"],
    },
    Metier {
        label: "Éducateur(trice) de jeunes enfants",
        rome: "K1202",
        rome_label: "Éducation de jeunes enfants",
        filiere: Filiere::Sociale,
        categories: &[Categorie::A],
        cadres_emplois: &["éducateurs territoriaux de jeunes enfants"],
        synonyms: &["EJE"],
    },
    Metier {
        label: "Éducateur(trice) spécialisé(e)",
        rome: "K1207",
        rome_label: "Intervention socioéducative",
        filiere: Filiere::Sociale,
        categories: &[Categorie::A],
        cadres_emplois: &["assistants territoriaux socio-éducatifs"],
        synonyms: &[],
    },
    Metier {
        label: "ATSEM",
        rome: "K1303",
        rome_label: "Assistance auprès d'enfants",
        filiere: Filiere::Sociale,
        categories: &[Categorie::C],
        cadres_emplois: &["agents territoriaux spécialisés des écoles maternelles"],
        synonyms: &["agent territorial spécialisé des écoles maternelles"],
    },
    Metier {
        label: "Aide à domicile",
        rome: "K1302",
        rome_label: "Assistance auprès d'adultes",
        filiere: Filiere::Sociale,
        categories: &[Categorie::C],
        cadres_emplois: &["agents sociaux territoriaux"],
        synonyms: &["auxiliaire de vie sociale"],
    },
    Metier {
        label: "Conseiller(ère) en insertion professionnelle",
        rome: "K1801",
        rome_label: "Conseil en emploi et insertion socioprofessionnelle",
        filiere: Filiere::Sociale,
        categories: &[Categorie::B, Categorie::A],
        cadres_emplois: &[
            "rédacteurs territoriaux",
            "conseillers territoriaux socio-éducatifs",
        ],
        synonyms: &["conseiller emploi"],
    },
    Metier {
        label: "Médiateur(trice) social(e)",
        rome: "K1204",
        rome_label: "Médiation sociale et facilitation de la vie en société",
        filiere: Filiere::Sociale,
        categories: &[Categorie::C, Categorie::B],
        cadres_emplois: &["agents sociaux territoriaux", "animateurs territoriaux"],
        synonyms: &["médiateur"],
    },
    Metier {
        label: "Auxiliaire de puériculture",
        rome: "J1304",
        rome_label: "Aide en puériculture",
        filiere: Filiere::MedicoSociale,
        categories: &[Categorie::B],
        cadres_emplois: &["auxiliaires de puériculture territoriaux"],
        synonyms: &[],
    },
    Metier {
        label: "Infirmier(ère)",
        rome: "J1506",
        rome_label: "Soins infirmiers généralistes",
        filiere: Filiere::MedicoSociale,
        categories: &[Categorie::A],
        cadres_emplois: &["infirmiers territoriaux en soins généraux"],
        synonyms: &["infirmière"],
    },
    Metier {
        label: "Puériculteur(trice)",
        rome: "J1507",
        rome_label: "Soins infirmiers spécialisés en puériculture",
        filiere: Filiere::MedicoSociale,
        categories: &[Categorie::A],
        cadres_emplois: &["puéricultrices territoriales"],
        synonyms: &["puéricultrice"],
    },
    Metier {
        label: "Aide-soignant(e)",
        rome: "J1501",
        rome_label: "Soins d'hygiène, de confort du patient",
        filiere: Filiere::MedicoSociale,
        categories: &[Categorie::C, Categorie::B],
        cadres_emplois: &["auxiliaires de soins territoriaux"],
        synonyms: &[],
    },
    Metier {
        label: "Médecin territorial(e)",
        rome: "J1102",
        rome_label: "Médecine généraliste et spécialisée",
        filiere: Filiere::MedicoSociale,
        categories: &[Categorie::A],
        cadres_emplois: &["médecins territoriaux"],
        synonyms: &["médecin de PMI", "médecin de prévention"],
    },
    Metier {
        label: "Psychologue",
        rome: "K1104",
        rome_label: "Psychologie",
        filiere: Filiere::MedicoSociale,
        categories: &[Categorie::A],
        cadres_emplois: &["psychologues territoriaux"],
        synonyms: &[],
    },
    Metier {
        label: "Technicien(ne) de laboratoire",
        rome: "J1302",
        rome_label: "Analyses médicales",
        filiere: Filiere::MedicoTechnique,
        categories: &[Categorie::B],
        cadres_emplois: &["techniciens paramédicaux territoriaux"],
        synonyms: &["technicien d'analyses"],
    },
    Metier {
        label: "Biologiste, vétérinaire ou pharmacien(ne)",
        rome: "J1201",
        rome_label: "Biologie médicale",
        filiere: Filiere::MedicoTechnique,
        categories: &[Categorie::A],
        cadres_emplois: &["biologistes, vétérinaires et pharmaciens territoriaux"],
        synonyms: &["biologiste"],
    },
    Metier {
        label: "Policier(ère) municipal(e)",
        rome: "K1707",
        rome_label: "Surveillance municipale",
        filiere: Filiere::PoliceMunicipale,
        categories: &[Categorie::C],
        cadres_emplois: &["agents de police municipale"],
        synonyms: &["agent de police municipale", "policière municipale"],
    },
    Metier {
        label: "Chef(fe) de service de police municipale",
        rome: "K1707",
        rome_label: "Surveillance municipale",
        filiere: Filiere::PoliceMunicipale,
        categories: &[Categorie::B, Categorie::A],
        cadres_emplois: &[
            "chefs de service de police municipale",
            "directeurs de police municipale",
        ],
        synonyms: &["directeur de police municipale"],
    },
    Metier {
        label: "Garde champêtre",
        rome: "K1707",
        rome_label: "Surveillance municipale",
        filiere: Filiere::PoliceMunicipale,
        categories: &[Categorie::C],
        cadres_emplois: &["gardes champêtres"],
        synonyms: &[],
    },
    Metier {
        label: "Sapeur-pompier professionnel",
        rome: "K1705",
        rome_label: "Sécurité civile et secours",
        filiere: Filiere::SapeursPompiers,
        categories: &[Categorie::C],
        cadres_emplois: &[
            "sapeurs et caporaux de sapeurs-pompiers professionnels",
            "sous-officiers de sapeurs-pompiers professionnels",
        ],
        synonyms: &["pompier"],
    },
    Metier {
        label: "Officier(ère) de sapeurs-pompiers",
        rome: "K1702",
        rome_label: "Direction de la sécurité civile et des secours",
        filiere: Filiere::SapeursPompiers,
        categories: &[Categorie::A, Categorie::B],
        cadres_emplois: &[
            "lieutenants de sapeurs-pompiers professionnels",
            "capitaines, commandants et lieutenants-colonels de sapeurs-pompiers professionnels",
        ],
        synonyms: &["officier SPP"],
    },
];

/// Whether `code` has the shape of a ROME fiche code: a letter A–N and four digits.
pub fn is_rome_code(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() == 5 && (b'A'..=b'N').contains(&b[0]) && b[1..].iter().all(u8::is_ascii_digit)
}

/// The métiers of a ROME fiche.
pub fn by_rome(code: &str) -> Vec<&'static Metier> {
    METIERS
        .iter()
        .filter(|m| m.rome.eq_ignore_ascii_case(code.trim()))
        .collect()
}

/// The métiers of a filière.
pub fn by_filiere(filiere: Filiere) -> Vec<&'static Metier> {
    METIERS.iter().filter(|m| m.filiere == filiere).collect()
}

/// Searches for a picker, accent- and case-insensitive, best first: labels that start
/// with `query` (or ROME codes that do), then labels or synonyms with a word starting with
/// it, then any substring of label, synonym or ROME label. At most `limit` results; an
/// empty query gives nothing.
pub fn search(query: &str, limit: usize) -> Vec<&'static Metier> {
    let q = fold(query.trim());
    if q.is_empty() {
        return Vec::new();
    }
    let mut ranked: Vec<(u8, &'static Metier)> = METIERS
        .iter()
        .filter_map(|m| rank(m, &q).map(|r| (r, m)))
        .collect();
    ranked.sort_by(|(ra, a), (rb, b)| ra.cmp(rb).then_with(|| fold(a.label).cmp(&fold(b.label))));
    ranked.into_iter().take(limit).map(|(_, m)| m).collect()
}

fn rank(m: &Metier, q: &str) -> Option<u8> {
    let label = fold(m.label);
    if label.starts_with(q) || fold(m.rome).starts_with(q) {
        return Some(0);
    }
    let names: Vec<String> = std::iter::once(label.clone())
        .chain(m.synonyms.iter().map(|s| fold(s)))
        .collect();
    let word_start = names.iter().any(|n| {
        n.starts_with(q)
            || n.match_indices(q)
                .any(|(i, _)| n[..i].ends_with([' ', '-', '\'', '(']))
    });
    if word_start {
        return Some(1);
    }
    if names.iter().any(|n| n.contains(q)) || fold(m.rome_label).contains(q) {
        return Some(2);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_large_and_well_formed() {
        assert!(METIERS.len() >= 60, "{}", METIERS.len());
        for m in METIERS {
            assert!(is_rome_code(m.rome), "{}: {}", m.label, m.rome);
            assert!(!m.categories.is_empty(), "{}", m.label);
            assert!(!m.cadres_emplois.is_empty(), "{}", m.label);
            assert!(!m.rome_label.is_empty(), "{}", m.label);
        }
        let mut labels: Vec<String> = METIERS.iter().map(|m| fold(m.label)).collect();
        labels.sort();
        let before = labels.len();
        labels.dedup();
        assert_eq!(before, labels.len(), "duplicate labels");
        // The shape check itself refuses what is not a ROME code.
        for bad in ["k1404", "Z1404", "K140", "K14045", "KA404", ""] {
            assert!(!is_rome_code(bad), "{bad}");
        }
    }

    #[test]
    fn every_filiere_is_represented() {
        for f in [
            Filiere::Administrative,
            Filiere::Technique,
            Filiere::Culturelle,
            Filiere::Sportive,
            Filiere::Animation,
            Filiere::Sociale,
            Filiere::MedicoSociale,
            Filiere::MedicoTechnique,
            Filiere::PoliceMunicipale,
            Filiere::SapeursPompiers,
        ] {
            assert!(!by_filiere(f).is_empty(), "{f:?}");
        }
    }

    #[test]
    fn search_is_accent_insensitive_and_ranked() {
        let labels = |q: &str| search(q, 10).iter().map(|m| m.label).collect::<Vec<_>>();
        assert_eq!(
            labels("educateur des a").first(),
            Some(&"Éducateur(trice) des activités physiques et sportives")
        );
        assert!(labels("ÉDUCATEUR").contains(&"Éducateur(trice) de jeunes enfants"));
        assert_eq!(labels("atsem"), vec!["ATSEM"]);
        assert_eq!(
            labels("secr").first(),
            Some(&"Secrétaire administratif(ve)")
        );
        assert!(labels("secr").contains(&"Secrétaire de mairie"));
        // A word inside the label: "voirie" comes before substrings elsewhere.
        let voirie = labels("voirie");
        assert!(voirie.contains(&"Agent de voirie"), "{voirie:?}");
        // A synonym.
        assert!(labels("ripeur").contains(&"Agent de collecte des déchets"));
        assert!(labels("DGS").contains(&"Directeur(trice) général(e) des services"));
        // A ROME code prefix.
        assert!(labels("k1707").contains(&"Policier(ère) municipal(e)"));
        assert!(labels("  ").is_empty());
        assert!(labels("zzzz").is_empty());
        assert_eq!(search("agent", 3).len(), 3);
    }

    #[test]
    fn references_validate() {
        use passerelle_protocol::vocab::{Validate, ValidationContext};
        for m in METIERS {
            let r = m.metier_ref();
            assert!(
                r.validate(&ValidationContext::production()).is_ok(),
                "{}",
                m.label
            );
            assert_eq!(by_rome(m.rome).first().map(|x| x.rome), Some(m.rome));
        }
    }
}
